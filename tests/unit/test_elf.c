/* hv_elf_parse: a valid image parses into the right segments, and every kind
 * of hostile image is refused with -ENOEXEC and a reason naming the fault.
 * Images are built in memory and handed to the parser in a heap buffer of
 * exactly their size, so that ASan catches any read past the end. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "pvhv/hv.h"

/* The builder writes header fields in host order. */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "test_elf builds little-endian images in host byte order"
#endif

#define MEM (16ull * 1024 * 1024) /* RAM size the tests parse against */
#define IMG_MAX 0x4000u
#define PHOFF 64u
#define MAX_PH 24u /* PHOFF + MAX_PH * 56 stays below TEXT_OFF */
#define TEXT_OFF 0x1000u
#define TEXT_GPA 0x100000u
#define TEXT_SIZE 0x100u
#define DATA_OFF 0x2000u
#define DATA_GPA 0x200000u
#define DATA_FILESZ 0x80u
#define DATA_MEMSZ 0x3000u
#define ENTRY (TEXT_GPA + 0x10u)

struct builder {
	_Alignas(8) uint8_t b[IMG_MAX];
	size_t size; /* bytes handed to the parser */
};

static Elf64_Ehdr *eh(struct builder *bl)
{
	return (Elf64_Ehdr *)bl->b;
}

static Elf64_Phdr *ph(struct builder *bl, unsigned i)
{
	assert_true(i < MAX_PH);
	return (Elf64_Phdr *)(bl->b + PHOFF + i * sizeof(Elf64_Phdr));
}

/* Appends a program header; returns its index. */
static unsigned add_ph(struct builder *bl, uint32_t type, uint32_t flags, uint64_t off,
		       uint64_t gpa, uint64_t filesz, uint64_t memsz)
{
	unsigned i = eh(bl)->e_phnum++;
	Elf64_Phdr *p = ph(bl, i);
	p->p_type = type;
	p->p_flags = flags;
	p->p_offset = off;
	p->p_vaddr = gpa;
	p->p_paddr = gpa;
	p->p_filesz = filesz;
	p->p_memsz = memsz;
	p->p_align = 0x1000;
	return i;
}

/* An empty ELF64 x86-64 ET_EXEC header with no program headers yet. */
static void build_header(struct builder *bl)
{
	memset(bl, 0, sizeof(*bl));
	Elf64_Ehdr *e = eh(bl);
	memcpy(e->e_ident, ELFMAG, SELFMAG);
	e->e_ident[EI_CLASS] = ELFCLASS64;
	e->e_ident[EI_DATA] = ELFDATA2LSB;
	e->e_ident[EI_VERSION] = EV_CURRENT;
	e->e_type = ET_EXEC;
	e->e_machine = EM_X86_64;
	e->e_version = EV_CURRENT;
	e->e_entry = ENTRY;
	e->e_phoff = PHOFF;
	e->e_ehsize = sizeof(Elf64_Ehdr);
	e->e_phentsize = sizeof(Elf64_Phdr);
	bl->size = DATA_OFF + DATA_FILESZ;
	memset(bl->b + TEXT_OFF, 0x90, TEXT_SIZE); /* nops */
	memset(bl->b + DATA_OFF, 0xd5, DATA_FILESZ);
}

/* The reference image: text (R+X), data with bss (R+W), and a PT_GNU_STACK
 * that the parser must ignore. */
static void build_valid(struct builder *bl)
{
	build_header(bl);
	add_ph(bl, PT_LOAD, PF_R | PF_X, TEXT_OFF, TEXT_GPA, TEXT_SIZE, TEXT_SIZE);
	add_ph(bl, PT_LOAD, PF_R | PF_W, DATA_OFF, DATA_GPA, DATA_FILESZ, DATA_MEMSZ);
	add_ph(bl, PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0);
}

/* Parses the first `size` bytes of the builder from an exact-size heap copy. */
static int parse_n(const struct builder *bl, size_t size, uint64_t mem, struct hv_elf_image *out,
		   char *err, size_t errlen)
{
	uint8_t *copy = malloc(size ? size : 1);
	assert_non_null(copy);
	memcpy(copy, bl->b, size);
	int rc = hv_elf_parse(copy, size, mem, out, err, errlen);
	free(copy);
	return rc;
}

/* Asserts that the image is refused with -ENOEXEC and a reason containing want. */
static void expect_reject_n(const struct builder *bl, size_t size, uint64_t mem, const char *want)
{
	struct hv_elf_image img;
	char err[160];

	memset(&img, 0xee, sizeof(img));
	memset(err, 0, sizeof(err));
	int rc = parse_n(bl, size, mem, &img, err, sizeof(err));
	if (rc != -ENOEXEC || !strstr(err, want))
		print_error("rc %d, reason \"%s\", wanted -ENOEXEC and \"%s\"\n", rc, err, want);
	assert_int_equal(rc, -ENOEXEC);
	assert_non_null(strstr(err, want));
	assert_null(strchr(err, '\n')); /* one line */
	/* Nothing written to the output on failure. */
	assert_int_equal(img.nsegments, 0xeeeeeeeeu);
}

static void expect_reject(const struct builder *bl, const char *want)
{
	expect_reject_n(bl, bl->size, MEM, want);
}

/* ---- the valid image --------------------------------------------------- */

static void valid_image_parses_into_its_segments(void **state)
{
	(void)state;
	struct builder bl;
	struct hv_elf_image img;
	char err[160] = "junk";

	build_valid(&bl);
	assert_int_equal(parse_n(&bl, bl.size, MEM, &img, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(img.entry, ENTRY);
	assert_int_equal(img.nsegments, 2);
	assert_int_equal(img.seg[0].gpa, TEXT_GPA);
	assert_int_equal(img.seg[0].file_off, TEXT_OFF);
	assert_int_equal(img.seg[0].file_size, TEXT_SIZE);
	assert_int_equal(img.seg[0].mem_size, TEXT_SIZE);
	assert_int_equal(img.seg[1].gpa, DATA_GPA);
	assert_int_equal(img.seg[1].file_off, DATA_OFF);
	assert_int_equal(img.seg[1].file_size, DATA_FILESZ);
	assert_int_equal(img.seg[1].mem_size, DATA_MEMSZ);
	assert_int_equal(img.end, DATA_GPA + DATA_MEMSZ); /* already page-aligned */
}

static void end_is_rounded_up_to_a_page(void **state)
{
	(void)state;
	struct builder bl;
	struct hv_elf_image img;

	build_valid(&bl);
	ph(&bl, 1)->p_memsz = 0x2001;
	assert_int_equal(parse_n(&bl, bl.size, MEM, &img, NULL, 0), 0);
	assert_int_equal(img.end, DATA_GPA + 0x3000);
}

static void end_is_that_of_the_highest_segment_in_any_order(void **state)
{
	(void)state;
	struct builder bl;
	struct hv_elf_image img;

	build_header(&bl);
	add_ph(&bl, PT_LOAD, PF_R | PF_W, DATA_OFF, DATA_GPA, DATA_FILESZ, DATA_MEMSZ);
	add_ph(&bl, PT_LOAD, PF_R | PF_X, TEXT_OFF, TEXT_GPA, TEXT_SIZE, TEXT_SIZE);
	assert_int_equal(parse_n(&bl, bl.size, MEM, &img, NULL, 0), 0);
	assert_int_equal(img.end, DATA_GPA + DATA_MEMSZ);
	assert_int_equal(img.entry, ENTRY);
}

static void segments_adjacent_in_one_page_are_accepted(void **state)
{
	(void)state;
	struct builder bl;
	struct hv_elf_image img;

	build_header(&bl);
	add_ph(&bl, PT_LOAD, PF_R | PF_X, TEXT_OFF, TEXT_GPA, TEXT_SIZE, TEXT_SIZE);
	add_ph(&bl, PT_LOAD, PF_R | PF_W, DATA_OFF, TEXT_GPA + TEXT_SIZE, DATA_FILESZ, 0x400);
	assert_int_equal(parse_n(&bl, bl.size, MEM, &img, NULL, 0), 0);
	assert_int_equal(img.nsegments, 2);
	assert_int_equal(img.end, TEXT_GPA + 0x1000);
}

static void segment_may_end_exactly_at_the_stack_reserve(void **state)
{
	(void)state;
	struct builder bl;
	struct hv_elf_image img;

	build_valid(&bl);
	ph(&bl, 1)->p_memsz = MEM - HV_STACK_RESERVE - DATA_GPA;
	assert_int_equal(parse_n(&bl, bl.size, MEM, &img, NULL, 0), 0);
	assert_int_equal(img.end, MEM - HV_STACK_RESERVE);
}

static void sixteen_segments_are_accepted(void **state)
{
	(void)state;
	struct builder bl;
	struct hv_elf_image img;

	build_header(&bl);
	for (unsigned i = 0; i < HV_ELF_MAX_SEGMENTS; i++)
		add_ph(&bl, PT_LOAD, PF_R | PF_X, TEXT_OFF, TEXT_GPA + i * 0x1000u, TEXT_SIZE,
		       TEXT_SIZE);
	assert_int_equal(parse_n(&bl, bl.size, MEM, &img, NULL, 0), 0);
	assert_int_equal(img.nsegments, HV_ELF_MAX_SEGMENTS);
}

static void empty_load_segment_is_skipped(void **state)
{
	(void)state;
	struct builder bl;
	struct hv_elf_image img;

	build_valid(&bl);
	add_ph(&bl, PT_LOAD, PF_R, 0, 0, 0, 0);
	assert_int_equal(parse_n(&bl, bl.size, MEM, &img, NULL, 0), 0);
	assert_int_equal(img.nsegments, 2);
}

static void null_err_buffer_is_allowed(void **state)
{
	(void)state;
	struct builder bl;
	struct hv_elf_image img;

	build_valid(&bl);
	eh(&bl)->e_machine = EM_386;
	assert_int_equal(parse_n(&bl, bl.size, MEM, &img, NULL, 0), -ENOEXEC);
	assert_int_equal(parse_n(&bl, bl.size, MEM, &img, NULL, 100), -ENOEXEC);
}

static void long_reason_is_truncated_not_overflowed(void **state)
{
	(void)state;
	struct builder bl;
	struct hv_elf_image img;
	char err[8];

	build_valid(&bl);
	eh(&bl)->e_machine = EM_386;
	assert_int_equal(parse_n(&bl, bl.size, MEM, &img, err, sizeof(err)), -ENOEXEC);
	assert_int_equal(strlen(err), sizeof(err) - 1);
}

/* ---- hostile headers --------------------------------------------------- */

static void truncated_header_is_rejected(void **state)
{
	(void)state;
	struct builder bl;
	char err[160];
	struct hv_elf_image img;

	build_valid(&bl);
	expect_reject_n(&bl, 0, MEM, "truncated: 0 bytes");
	expect_reject_n(&bl, 10, MEM, "truncated: 10 bytes");
	expect_reject_n(&bl, 63, MEM, "truncated: 63 bytes");
	assert_int_equal(hv_elf_parse(NULL, 0, MEM, &img, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "truncated"));
}

static void bad_magic_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	eh(&bl)->e_ident[EI_MAG1] = 'L';
	expect_reject(&bl, "bad magic");
}

static void class32_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	eh(&bl)->e_ident[EI_CLASS] = ELFCLASS32;
	expect_reject(&bl, "32-bit");
}

static void big_endian_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	eh(&bl)->e_ident[EI_DATA] = ELFDATA2MSB;
	expect_reject(&bl, "big-endian");
}

static void wrong_version_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	eh(&bl)->e_ident[EI_VERSION] = 2;
	expect_reject(&bl, "ELF ident version 2");
	build_valid(&bl);
	eh(&bl)->e_version = 0;
	expect_reject(&bl, "ELF version 0");
}

static void wrong_machine_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	eh(&bl)->e_machine = EM_AARCH64;
	expect_reject(&bl, "machine 183, want EM_X86_64");
}

static void et_dyn_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	eh(&bl)->e_type = ET_DYN;
	expect_reject(&bl, "ET_DYN");
	eh(&bl)->e_type = ET_REL;
	expect_reject(&bl, "ET_REL");
}

static void phoff_beyond_file_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	eh(&bl)->e_phoff = bl.size + 8;
	expect_reject(&bl, "program header table 0x2088+0xa8 beyond end of file (0x2080 bytes)");
	/* The table starts inside the file but runs off its end. */
	build_valid(&bl);
	eh(&bl)->e_phoff = bl.size - sizeof(Elf64_Phdr);
	expect_reject(&bl, "beyond end of file");
}

static void phoff_plus_table_overflowing_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	/* phoff + phnum * phentsize wraps around 2^64 to a small offset. */
	build_valid(&bl);
	eh(&bl)->e_phoff = UINT64_MAX - 0x40;
	expect_reject(&bl, "program header table 0xffffffffffffffbf+0xa8 beyond end of file");
}

static void too_many_program_headers_are_rejected(void **state)
{
	(void)state;
	struct builder bl;

	/* 0xffff is PN_XNUM; with 56-byte entries the table would be 3.5 MiB. */
	build_valid(&bl);
	eh(&bl)->e_phnum = 0xffff;
	expect_reject(&bl, "65535 program headers, at most");
}

static void wrong_phentsize_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	eh(&bl)->e_phentsize = 32; /* an ELF32 program header */
	expect_reject(&bl, "program header size 32, want 56");
	eh(&bl)->e_phentsize = 0;
	expect_reject(&bl, "program header size 0, want 56");
}

static void wrong_ehsize_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	eh(&bl)->e_ehsize = 52;
	expect_reject(&bl, "header size 52, want 64");
}

/* ---- hostile segments -------------------------------------------------- */

static void segment_offset_beyond_file_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	ph(&bl, 1)->p_offset = 0x3000;
	expect_reject(&bl, "segment 1: file range 0x3000+0x80 beyond end of file (0x2080 bytes)");
	/* Starts inside, ends outside by one byte. */
	build_valid(&bl);
	ph(&bl, 1)->p_filesz = DATA_FILESZ + 1;
	expect_reject(&bl, "segment 1: file range 0x2000+0x81 beyond end of file");
}

static void segment_offset_plus_filesz_overflowing_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	ph(&bl, 0)->p_offset = 0x100;
	ph(&bl, 0)->p_filesz = UINT64_MAX - 0x80; /* 0x100 + this wraps to 0x7f */
	ph(&bl, 0)->p_memsz = UINT64_MAX - 0x80;
	expect_reject(&bl, "segment 0: file range 0x100+0xffffffffffffff7f beyond end of file");
}

static void filesz_above_memsz_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	ph(&bl, 1)->p_memsz = DATA_FILESZ - 1;
	expect_reject(&bl, "segment 1: file size 0x80 larger than memory size 0x7f");
}

static void paddr_different_from_vaddr_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	ph(&bl, 1)->p_paddr = 0x300000;
	expect_reject(&bl, "segment 1: paddr 0x300000 differs from vaddr 0x200000");
}

static void segment_below_image_minimum_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	ph(&bl, 0)->p_vaddr = ph(&bl, 0)->p_paddr = PV_IMAGE_MIN_GPA - 0x1000;
	eh(&bl)->e_entry = PV_IMAGE_MIN_GPA - 0x1000;
	expect_reject(&bl, "segment 0: address 0xff000 below the image minimum 0x100000");
	/* The boot-info page is the most tempting target. */
	ph(&bl, 0)->p_vaddr = ph(&bl, 0)->p_paddr = PV_BOOT_INFO_GPA;
	expect_reject(&bl, "segment 0: address 0x1000 below the image minimum");
}

static void segment_beyond_ram_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	/* Past RAM altogether. */
	build_valid(&bl);
	ph(&bl, 1)->p_vaddr = ph(&bl, 1)->p_paddr = MEM + 0x1000;
	expect_reject(&bl, "segment 1: memory range 0x1001000+0x3000 beyond usable RAM (ends at 0xff0000)");
	/* Inside RAM but one byte into the stack reserve. */
	build_valid(&bl);
	ph(&bl, 1)->p_memsz = MEM - HV_STACK_RESERVE - DATA_GPA + 1;
	expect_reject(&bl, "segment 1: memory range 0x200000+0xdf0001 beyond usable RAM");
	/* The same image fits a larger RAM. */
	struct hv_elf_image img;
	assert_int_equal(parse_n(&bl, bl.size, 2 * MEM, &img, NULL, 0), 0);
}

static void gpa_plus_memsz_wrapping_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	/* 0x200000 + memsz wraps to 0x1000: a naive end check would pass. */
	build_valid(&bl);
	ph(&bl, 1)->p_memsz = UINT64_MAX - DATA_GPA + 0x1001;
	expect_reject(&bl, "segment 1: memory range 0x200000+0xffffffffffe01000 beyond usable RAM");
}

static void tiny_ram_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	expect_reject_n(&bl, bl.size, 0, "leaves no room for an image");
	expect_reject_n(&bl, bl.size, PV_IMAGE_MIN_GPA + HV_STACK_RESERVE,
			"leaves no room for an image");
}

static void overlapping_segments_are_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	add_ph(&bl, PT_LOAD, PF_R, DATA_OFF, DATA_GPA + DATA_MEMSZ - 1, 1, 0x1000);
	expect_reject(&bl, "segment 3: [0x202fff, 0x203fff) overlaps an earlier segment at "
			   "[0x200000, 0x203000)");
	/* A later segment entirely inside an earlier one. */
	build_valid(&bl);
	ph(&bl, 1)->p_vaddr = ph(&bl, 1)->p_paddr = TEXT_GPA + 0x40;
	ph(&bl, 1)->p_memsz = 0x10;
	ph(&bl, 1)->p_filesz = 0x10;
	expect_reject(&bl, "segment 1: [0x100040, 0x100050) overlaps an earlier segment at "
			   "[0x100000, 0x100100)");
	/* A later segment (bss) covering an earlier one entirely. */
	build_valid(&bl);
	ph(&bl, 1)->p_vaddr = ph(&bl, 1)->p_paddr = TEXT_GPA;
	expect_reject(&bl, "segment 1: [0x100000, 0x103000) overlaps");
	/* The same range twice. */
	build_valid(&bl);
	add_ph(&bl, PT_LOAD, PF_R | PF_X, TEXT_OFF, TEXT_GPA, TEXT_SIZE, TEXT_SIZE);
	expect_reject(&bl, "segment 3: [0x100000, 0x100100) overlaps");
}

static void too_many_segments_are_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_header(&bl);
	for (unsigned i = 0; i < HV_ELF_MAX_SEGMENTS + 1; i++)
		add_ph(&bl, PT_LOAD, PF_R | PF_X, TEXT_OFF, TEXT_GPA + i * 0x1000u, TEXT_SIZE,
		       TEXT_SIZE);
	expect_reject(&bl, "segment 16: more than 16 loadable segments");
}

static void no_load_segment_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_header(&bl);
	add_ph(&bl, PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0);
	add_ph(&bl, PT_NOTE, PF_R, TEXT_OFF, 0, 0x10, 0x10);
	expect_reject(&bl, "no PT_LOAD segment");
	/* Only empty PT_LOADs. */
	build_header(&bl);
	add_ph(&bl, PT_LOAD, PF_R | PF_X, 0, 0, 0, 0);
	expect_reject(&bl, "every PT_LOAD segment is empty");
	/* No program headers at all. */
	build_header(&bl);
	expect_reject(&bl, "no program headers");
}

static void entry_outside_executable_segment_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	/* In no segment. */
	build_valid(&bl);
	eh(&bl)->e_entry = 0x180000;
	expect_reject(&bl, "entry 0x180000 not inside the file data of an executable segment");
	/* In the data segment, which is not PF_X. */
	eh(&bl)->e_entry = DATA_GPA;
	expect_reject(&bl, "entry 0x200000 not inside");
	/* One past the end of text. */
	eh(&bl)->e_entry = TEXT_GPA + TEXT_SIZE;
	expect_reject(&bl, "entry 0x100100 not inside");
	/* In an executable segment's zero-filled tail. */
	build_valid(&bl);
	ph(&bl, 0)->p_memsz = 0x1000;
	eh(&bl)->e_entry = TEXT_GPA + TEXT_SIZE;
	expect_reject(&bl, "entry 0x100100 not inside");
	/* Zero. */
	eh(&bl)->e_entry = 0;
	expect_reject(&bl, "entry 0x0 not inside");
}

static void interp_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	add_ph(&bl, PT_INTERP, PF_R, TEXT_OFF, TEXT_GPA, 0x1c, 0x1c);
	expect_reject(&bl, "segment 3: PT_INTERP present, not a static image");
}

static void dynamic_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	add_ph(&bl, PT_DYNAMIC, PF_R | PF_W, DATA_OFF, DATA_GPA, 0x10, 0x10);
	expect_reject(&bl, "segment 3: PT_DYNAMIC present, not a static image");
}

/* Every truncation of the valid image is either accepted or refused cleanly
 * (ASan watches the reads), and none shorter than the data is accepted. */
static void every_truncation_is_handled(void **state)
{
	(void)state;
	struct builder bl;
	struct hv_elf_image img;
	char err[160];

	build_valid(&bl);
	for (size_t n = 0; n < bl.size; n++) {
		int rc = parse_n(&bl, n, MEM, &img, err, sizeof(err));
		assert_int_equal(rc, -ENOEXEC);
		assert_true(err[0] != '\0');
	}
}

/* ---- the real guest ---------------------------------------------------- */

/* A PVHA ABI note of desc_len bytes holding version at NOTE_OFF, in a PT_NOTE. */
#define NOTE_OFF 0x1800u
static void add_abi_note(struct builder *bl, uint32_t version, uint32_t desc_len)
{
	uint32_t hdr[3] = { 5, desc_len, PV_NOTE_ABI };
	memcpy(bl->b + NOTE_OFF, hdr, sizeof(hdr));
	memcpy(bl->b + NOTE_OFF + 12, "PVHA", 5);
	memcpy(bl->b + NOTE_OFF + 20, &version, sizeof(version));
	add_ph(bl, PT_NOTE, PF_R, NOTE_OFF, 0, 20 + ((desc_len + 3) & ~3u), 0);
}

static void abi_version_comes_from_the_pvha_note(void **state)
{
	(void)state;
	struct builder bl;
	struct hv_elf_image img;
	char err[160];

	build_valid(&bl);
	assert_int_equal(parse_n(&bl, bl.size, MEM, &img, err, sizeof(err)), 0);
	assert_int_equal(img.abi_version, 1); /* no note: a v1 image */

	build_valid(&bl);
	add_abi_note(&bl, 2, 4);
	assert_int_equal(parse_n(&bl, bl.size, MEM, &img, err, sizeof(err)), 0);
	assert_int_equal(img.abi_version, 2);

	build_valid(&bl);
	add_abi_note(&bl, 1, 4);
	assert_int_equal(parse_n(&bl, bl.size, MEM, &img, err, sizeof(err)), 0);
	assert_int_equal(img.abi_version, 1);

	/* someone else's notes that do not parse are ignored */
	build_valid(&bl);
	add_ph(&bl, PT_NOTE, PF_R, TEXT_OFF, 0, 0x10, 0x10);
	assert_int_equal(parse_n(&bl, bl.size, MEM, &img, err, sizeof(err)), 0);
	assert_int_equal(img.abi_version, 1);
}

static void unserved_or_malformed_abi_note_is_rejected(void **state)
{
	(void)state;
	struct builder bl;

	build_valid(&bl);
	add_abi_note(&bl, PV_ABI_VERSION + 1, 4);
	expect_reject(&bl, "asks for ABI version 3; this host serves 1 to 2");
	build_valid(&bl);
	add_abi_note(&bl, 0, 4);
	expect_reject(&bl, "asks for ABI version 0");
	build_valid(&bl);
	add_abi_note(&bl, 2, 8);
	expect_reject(&bl, "PVHA ABI note of 8 bytes, want 4");
	build_valid(&bl);
	add_ph(&bl, PT_NOTE, PF_R, IMG_MAX - 8, 0, 0x10, 0);
	expect_reject(&bl, "note range beyond end of file");
}

static void real_guest_image_parses(void **state)
{
	(void)state;
	const char *dir = getenv("PVHA_BUILD_DIR");
	char path[4096];
	struct stat st;

	if (!dir) {
		skip();
		return;
	}
	snprintf(path, sizeof(path), "%s/guests/hello.elf", dir);
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
		skip();
		return;
	}

	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	uint8_t *buf = malloc((size_t)st.st_size);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);

	struct hv_elf_image img;
	char err[160] = "";
	int rc = hv_elf_parse(buf, (size_t)st.st_size, 64ull << 20, &img, err, sizeof(err));
	if (rc)
		print_error("%s: %s\n", path, err);
	assert_int_equal(rc, 0);
	assert_true(img.nsegments >= 1);
	assert_true(img.entry >= PV_IMAGE_MIN_GPA);
	assert_int_equal(img.end % PV_PAGE_SIZE, 0);
	assert_int_equal(img.abi_version, PV_ABI_VERSION); /* start.S's note */
	for (unsigned i = 0; i < img.nsegments; i++) {
		assert_true(img.seg[i].gpa >= PV_IMAGE_MIN_GPA);
		assert_true(img.seg[i].gpa + img.seg[i].mem_size <= img.end);
		assert_true(img.seg[i].file_off + img.seg[i].file_size <= (uint64_t)st.st_size);
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(valid_image_parses_into_its_segments),
		cmocka_unit_test(end_is_rounded_up_to_a_page),
		cmocka_unit_test(end_is_that_of_the_highest_segment_in_any_order),
		cmocka_unit_test(segments_adjacent_in_one_page_are_accepted),
		cmocka_unit_test(segment_may_end_exactly_at_the_stack_reserve),
		cmocka_unit_test(sixteen_segments_are_accepted),
		cmocka_unit_test(empty_load_segment_is_skipped),
		cmocka_unit_test(null_err_buffer_is_allowed),
		cmocka_unit_test(long_reason_is_truncated_not_overflowed),
		cmocka_unit_test(truncated_header_is_rejected),
		cmocka_unit_test(bad_magic_is_rejected),
		cmocka_unit_test(class32_is_rejected),
		cmocka_unit_test(big_endian_is_rejected),
		cmocka_unit_test(wrong_version_is_rejected),
		cmocka_unit_test(wrong_machine_is_rejected),
		cmocka_unit_test(et_dyn_is_rejected),
		cmocka_unit_test(phoff_beyond_file_is_rejected),
		cmocka_unit_test(phoff_plus_table_overflowing_is_rejected),
		cmocka_unit_test(too_many_program_headers_are_rejected),
		cmocka_unit_test(wrong_phentsize_is_rejected),
		cmocka_unit_test(wrong_ehsize_is_rejected),
		cmocka_unit_test(segment_offset_beyond_file_is_rejected),
		cmocka_unit_test(segment_offset_plus_filesz_overflowing_is_rejected),
		cmocka_unit_test(filesz_above_memsz_is_rejected),
		cmocka_unit_test(paddr_different_from_vaddr_is_rejected),
		cmocka_unit_test(segment_below_image_minimum_is_rejected),
		cmocka_unit_test(segment_beyond_ram_is_rejected),
		cmocka_unit_test(gpa_plus_memsz_wrapping_is_rejected),
		cmocka_unit_test(tiny_ram_is_rejected),
		cmocka_unit_test(overlapping_segments_are_rejected),
		cmocka_unit_test(too_many_segments_are_rejected),
		cmocka_unit_test(no_load_segment_is_rejected),
		cmocka_unit_test(entry_outside_executable_segment_is_rejected),
		cmocka_unit_test(interp_is_rejected),
		cmocka_unit_test(dynamic_is_rejected),
		cmocka_unit_test(every_truncation_is_handled),
		cmocka_unit_test(abi_version_comes_from_the_pvha_note),
		cmocka_unit_test(unserved_or_malformed_abi_note_is_rejected),
		cmocka_unit_test(real_guest_image_parses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
