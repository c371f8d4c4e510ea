/*
 * Guest entry for the pvha ABI; the PVHA note at the end tells the host which
 * ABI version the image is written for (PV_GUEST_ABI, default 2). The host enters _start in 64-bit mode at CPL 0
 * with rdi = struct pv_boot_info * and rsp = boot_info->stack_top (16-byte
 * aligned). We set up the FPU, zero .bss, record the boot-info pointer for
 * pv_boot_info(), call main(bi) and pass its return value to pv_exit().
 */
	.section .text.start, "ax", @progbits
	.globl _start
	.type _start, @function
_start:
	/* Unicorn resets FPCW and MXCSR to 0 (every exception unmasked): set the
	 * values a hosted C program expects. */
	subq $16, %rsp
	movw $0x037f, (%rsp)
	fldcw (%rsp)
	movl $0x1f80, 4(%rsp)
	ldmxcsr 4(%rsp)
	addq $16, %rsp

	/* Be defensive about the stack: align it, and start a clean frame chain. */
	andq $-16, %rsp
	xorl %ebp, %ebp

	/* The loader zero-fills p_memsz beyond p_filesz; zero .bss again anyway,
	 * in 8-byte stores (every store is expensive on the software CPU). */
	movq %rdi, %rbx
	leaq __bss_start(%rip), %rdi
	leaq __bss_end(%rip), %rcx
	subq %rdi, %rcx
	shrq $3, %rcx
	xorl %eax, %eax
	cld
	rep stosq

	movq %rbx, pv_boot_info_ptr(%rip)
	movq %rbx, %rdi
	call main

	/* pv_exit(main's return value) does not return. */
	movl %eax, %edi
	call pv_exit
1:	hlt
	jmp 1b
	.size _start, . - _start

#ifndef PV_GUEST_ABI
#define PV_GUEST_ABI 2
#endif
	/* ELF note: namesz 5 ("PVHA\0"), descsz 4, type PV_NOTE_ABI (1), the
	 * name padded to 8, the version. guest.ld keeps it in a PT_NOTE. */
	.section .note.pvha, "a", @note
	.balign 4
	.long 5
	.long 4
	.long 1
	.asciz "PVHA"
	.balign 4
	.long PV_GUEST_ABI

	.section .note.GNU-stack, "", @progbits
