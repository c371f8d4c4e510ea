# pvha guest images: freestanding x86-64 ELF executables for the pvha ABI.
#
# Include this file from the top-level CMakeLists (before the add_subdirectory
# calls) to get:
#   pvha_guest(NAME [ABI 1] SRC...)  builds ${PVHA_GUEST_DIR}/NAME.elf (target
#                             guest_NAME) from SRC, the start code and libpv;
#                             checks it with check_image.sh; adds it to the
#                             custom target `guests`. The image's PVHA note
#                             asks for ABI v2 unless `ABI 1` is given (an
#                             ABI v1 guest, for the compatibility tests).
#   pvha_guest_flags(TARGET)  gives any target the guest compile options (used
#                             for libpv itself).
# The libraries the images link (pv_guest_start[_v1], pv_guest_lib) are defined in
# hv-core/guest/CMakeLists.txt; target names resolve at generate time, so
# pvha_guest() may be called from any directory, before or after that one.
#
# Guests never get the host warnings or sanitizers (pvha_host_target): they run
# with no C library, no runtime and no unwinder.
include_guard(GLOBAL)

# Where the SDK's files are: beside this file in the source tree; the
# installed pvha-guest-config.cmake sets these three (and defines the targets
# pv_guest_start and pv_guest_lib as imported ones) before including it.
if(NOT DEFINED PVHA_GUEST_INCLUDE_DIRS)
  set(PVHA_GUEST_INCLUDE_DIRS ${CMAKE_CURRENT_LIST_DIR}/include ${CMAKE_CURRENT_LIST_DIR}/../include)
  set(PVHA_GUEST_LD ${CMAKE_CURRENT_LIST_DIR}/guest.ld)
  set(PVHA_GUEST_CHECK ${CMAKE_CURRENT_LIST_DIR}/check_image.sh)
endif()

# check_image.sh reads GNU objdump's syntax; with clang, CMAKE_OBJDUMP is
# llvm-objdump, so look for binutils' own (the linker's package ships it).
find_program(PVHA_GUEST_OBJDUMP NAMES objdump)

function(pvha_guest_flags t)
  # -fcf-protection=none: no endbr64 (Unicorn and old hosts need not know it).
  # -mno-avx: Unicorn's AVX is unreliable; SSE/x87 are fine.
  target_compile_options(${t} PRIVATE
    -ffreestanding -fno-pic -mno-red-zone -fcf-protection=none
    -fno-stack-protector -fno-asynchronous-unwind-tables -fno-unwind-tables
    -mno-avx -O2 -Wall -Wextra -Werror)
  target_include_directories(${t} PRIVATE ${PVHA_GUEST_INCLUDE_DIRS})
endfunction()

function(pvha_guest name)
  cmake_parse_arguments(PARSE_ARGV 1 G "" "ABI" "")
  set(srcs ${G_UNPARSED_ARGUMENTS})
  if(NOT srcs)
    message(FATAL_ERROR "pvha_guest(${name}): no sources")
  endif()
  set(start pv_guest_start)
  if(G_ABI STREQUAL "1")
    if(NOT TARGET pv_guest_start_v1)
      message(FATAL_ERROR "pvha_guest(${name}): ABI 1 images are built in pvha's own tree only; the installed SDK builds ABI 2")
    endif()
    set(start pv_guest_start_v1)
  elseif(G_ABI AND NOT G_ABI STREQUAL "2")
    message(FATAL_ERROR "pvha_guest(${name}): ABI ${G_ABI}: want 1 or 2")
  endif()
  set(dir ${PVHA_GUEST_DIR})
  if(NOT dir)
    set(dir ${CMAKE_BINARY_DIR}/guests)
  endif()
  set(t guest_${name})
  add_executable(${t} ${srcs})
  pvha_guest_flags(${t})
  target_link_libraries(${t} PRIVATE ${start} pv_guest_lib gcc)
  target_link_options(${t} PRIVATE
    # clang's -static already means no PIE (and it warns that -no-pie is unused)
    -nostdlib -static $<$<C_COMPILER_ID:GNU>:-no-pie>
    -Wl,-T,${PVHA_GUEST_LD}
    -Wl,--build-id=none -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack)
  set_target_properties(${t} PROPERTIES
    OUTPUT_NAME ${name}
    SUFFIX .elf
    RUNTIME_OUTPUT_DIRECTORY ${dir}
    LINK_DEPENDS ${PVHA_GUEST_LD})
  # Refuse an image that breaks a rule the hypervisor relies on (a hypercall
  # not followed by `jmp 1f; 1:`, a wrong entry, AVX): see check_image.sh.
  if(PVHA_GUEST_OBJDUMP)
    add_custom_command(TARGET ${t} POST_BUILD
      COMMAND sh ${PVHA_GUEST_CHECK} ${PVHA_GUEST_OBJDUMP} $<TARGET_FILE:${t}>
      VERBATIM)
  endif()
  if(NOT TARGET guests)
    add_custom_target(guests)
  endif()
  add_dependencies(guests ${t})
endfunction()
