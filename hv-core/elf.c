/* The ELF loader's checking half: hv_elf_parse() turns an untrusted image into
 * a list of segments that machine.c may copy into guest RAM without further
 * checks. Pure: no allocation, no I/O, no global state; safe from any thread.
 *
 * Decisions:
 * - The load address is p_vaddr, and p_paddr must equal it. ABI v1 guests run
 *   with an identity map, so a difference could only mean an image linked for
 *   some other loader; rejecting it is clearer than guessing.
 * - Overlap is checked at byte granularity on [gpa, gpa + p_memsz). ABI v1 has
 *   no per-page permissions, so two segments sharing a page (a compact linker
 *   script) are harmless; machine.c copies and zeroes exact byte ranges, so the
 *   order of the copies cannot matter once the ranges are disjoint.
 * - PT_LOAD with p_memsz == 0 loads nothing and is skipped (it does not count
 *   towards HV_ELF_MAX_SEGMENTS); its file range is still checked.
 * - The entry must lie in the file-backed part [gpa, gpa + p_filesz) of a
 *   PF_X segment: an entry in the zero-filled tail would execute zeros.
 * - The upper limit for segments is mem_size - HV_STACK_RESERVE rounded down
 *   to a page, so that `end` (rounded up) never reaches into the stack.
 * - The ABI version comes from a PT_NOTE holding a note named "PVHA" of type
 *   PV_NOTE_ABI with a 4-byte version; no such note means version 1 (images
 *   built before ABI v2 have none). A note area that does not parse is
 *   someone else's and ignored (v1 images from any toolchain keep loading);
 *   a PVHA note of the wrong size, or a version this host does not serve,
 *   rejects the image: guessing would run a guest against calls it does not
 *   expect.
 * - Header fields are read with memcpy (the image need not be aligned) and
 *   converted from little-endian, so the parser is right on any host.
 */
#include <elf.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pvhv/hv.h"

/* More program headers than any static guest needs (ld emits about ten); a
 * cap keeps the O(phnum) scan and the error messages bounded. */
#define ELF_MAX_PHDRS 64u

#define PAGE_MASK ((uint64_t)PV_PAGE_SIZE - 1)

/* Formats a one-line reason into err (when given) and returns -ENOEXEC. */
static int reject(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int reject(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -ENOEXEC;
}

/* The ELF header with every field in host byte order. */
static void read_ehdr(const uint8_t *p, Elf64_Ehdr *eh)
{
	memcpy(eh, p, sizeof(*eh));
	eh->e_type = le16toh(eh->e_type);
	eh->e_machine = le16toh(eh->e_machine);
	eh->e_version = le32toh(eh->e_version);
	eh->e_entry = le64toh(eh->e_entry);
	eh->e_phoff = le64toh(eh->e_phoff);
	eh->e_shoff = le64toh(eh->e_shoff);
	eh->e_flags = le32toh(eh->e_flags);
	eh->e_ehsize = le16toh(eh->e_ehsize);
	eh->e_phentsize = le16toh(eh->e_phentsize);
	eh->e_phnum = le16toh(eh->e_phnum);
	eh->e_shentsize = le16toh(eh->e_shentsize);
	eh->e_shnum = le16toh(eh->e_shnum);
	eh->e_shstrndx = le16toh(eh->e_shstrndx);
}

/* Program header i, in host byte order. The caller checked the table bounds. */
static void read_phdr(const uint8_t *p, uint64_t phoff, unsigned i, Elf64_Phdr *ph)
{
	memcpy(ph, p + phoff + (uint64_t)i * sizeof(*ph), sizeof(*ph));
	ph->p_type = le32toh(ph->p_type);
	ph->p_flags = le32toh(ph->p_flags);
	ph->p_offset = le64toh(ph->p_offset);
	ph->p_vaddr = le64toh(ph->p_vaddr);
	ph->p_paddr = le64toh(ph->p_paddr);
	ph->p_filesz = le64toh(ph->p_filesz);
	ph->p_memsz = le64toh(ph->p_memsz);
	ph->p_align = le64toh(ph->p_align);
}

/* Checks the identification bytes and the fixed header fields. */
static int check_ehdr(const uint8_t *p, size_t size, const Elf64_Ehdr *eh, char *err,
		      size_t errlen)
{
	if (memcmp(p, ELFMAG, SELFMAG) != 0)
		return reject(err, errlen, "bad magic %02x %02x %02x %02x (not an ELF file)",
			      p[0], p[1], p[2], p[3]);
	if (p[EI_CLASS] != ELFCLASS64)
		return reject(err, errlen, "ELF class %u, want ELFCLASS64 (%s)", p[EI_CLASS],
			      p[EI_CLASS] == ELFCLASS32 ? "32-bit image" : "unknown class");
	if (p[EI_DATA] != ELFDATA2LSB)
		return reject(err, errlen, "ELF data encoding %u, want little-endian (%s)",
			      p[EI_DATA],
			      p[EI_DATA] == ELFDATA2MSB ? "big-endian image" : "unknown encoding");
	if (p[EI_VERSION] != EV_CURRENT)
		return reject(err, errlen, "ELF ident version %u, want %u", p[EI_VERSION],
			      EV_CURRENT);
	if (eh->e_version != EV_CURRENT)
		return reject(err, errlen, "ELF version %" PRIu32 ", want %u", eh->e_version,
			      EV_CURRENT);
	if (eh->e_machine != EM_X86_64)
		return reject(err, errlen, "machine %u, want EM_X86_64 (%u)", eh->e_machine,
			      EM_X86_64);
	if (eh->e_type != ET_EXEC)
		return reject(err, errlen, "type %u, want ET_EXEC (%s)", eh->e_type,
			      eh->e_type == ET_DYN ? "ET_DYN: shared object or PIE" :
			      eh->e_type == ET_REL ? "ET_REL: object file, not linked" :
			      "not an executable");
	if (eh->e_ehsize != sizeof(Elf64_Ehdr))
		return reject(err, errlen, "header size %u, want %zu", eh->e_ehsize,
			      sizeof(Elf64_Ehdr));

	if (eh->e_phnum == 0)
		return reject(err, errlen, "no program headers, nothing to load");
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return reject(err, errlen, "program header size %u, want %zu", eh->e_phentsize,
			      sizeof(Elf64_Phdr));
	/* PN_XNUM (0xffff, count in section 0) is far above the cap as well. */
	if (eh->e_phnum > ELF_MAX_PHDRS)
		return reject(err, errlen, "%u program headers, at most %u allowed", eh->e_phnum,
			      ELF_MAX_PHDRS);
	/* phnum and phentsize are 16-bit: their product cannot overflow, but
	 * phoff + product can, so compare against what is left after phoff. */
	uint64_t table = (uint64_t)eh->e_phnum * eh->e_phentsize;
	if (eh->e_phoff > size || table > size - eh->e_phoff)
		return reject(err, errlen,
			      "program header table 0x%" PRIx64 "+0x%" PRIx64
			      " beyond end of file (0x%zx bytes)", eh->e_phoff, table, size);
	return 0;
}

/* Checks one PT_LOAD against the file and the RAM window [PV_IMAGE_MIN_GPA, limit). */
static int check_load(const Elf64_Phdr *ph, unsigned i, size_t size, uint64_t limit,
		      char *err, size_t errlen)
{
	if (ph->p_filesz > ph->p_memsz)
		return reject(err, errlen,
			      "segment %u: file size 0x%" PRIx64 " larger than memory size 0x%" PRIx64,
			      i, ph->p_filesz, ph->p_memsz);
	if (ph->p_offset > size || ph->p_filesz > size - ph->p_offset)
		return reject(err, errlen,
			      "segment %u: file range 0x%" PRIx64 "+0x%" PRIx64
			      " beyond end of file (0x%zx bytes)", i, ph->p_offset, ph->p_filesz, size);
	if (ph->p_memsz == 0)
		return 0;
	if (ph->p_paddr != ph->p_vaddr)
		return reject(err, errlen,
			      "segment %u: paddr 0x%" PRIx64 " differs from vaddr 0x%" PRIx64
			      " (guests are identity-mapped)", i, ph->p_paddr, ph->p_vaddr);
	if (ph->p_vaddr < PV_IMAGE_MIN_GPA)
		return reject(err, errlen,
			      "segment %u: address 0x%" PRIx64 " below the image minimum 0x%x",
			      i, ph->p_vaddr, PV_IMAGE_MIN_GPA);
	if (ph->p_vaddr > limit || ph->p_memsz > limit - ph->p_vaddr)
		return reject(err, errlen,
			      "segment %u: memory range 0x%" PRIx64 "+0x%" PRIx64
			      " beyond usable RAM (ends at 0x%" PRIx64 ")", i, ph->p_vaddr,
			      ph->p_memsz, limit);
	return 0;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

/* Walks the notes of one PT_NOTE segment; sets *abi when it holds a PVHA ABI
 * note. Returns 0 or -ENOEXEC (a note range outside the file, a PVHA note of
 * the wrong size). */
static int scan_notes(const uint8_t *p, size_t size, const Elf64_Phdr *ph, unsigned i,
		      uint32_t *abi, char *err, size_t errlen)
{
	if (ph->p_offset > size || ph->p_filesz > size - ph->p_offset)
		return reject(err, errlen, "segment %u: note range beyond end of file", i);
	const uint8_t *n = p + ph->p_offset;
	uint64_t left = ph->p_filesz;
	while (left >= 12) {
		uint64_t namesz = rd32(n), descsz = rd32(n + 4), type = rd32(n + 8);
		uint64_t name_pad = (namesz + 3) & ~3ull, desc_pad = (descsz + 3) & ~3ull;
		if (name_pad > left - 12 || desc_pad > left - 12 - name_pad)
			return 0; /* not notes as we know them: someone else's, ignored */
		const uint8_t *name = n + 12, *desc = name + name_pad;
		if (namesz == sizeof(PV_NOTE_NAME) && memcmp(name, PV_NOTE_NAME, namesz) == 0 &&
		    type == PV_NOTE_ABI) {
			if (descsz != 4)
				return reject(err, errlen, "PVHA ABI note of %" PRIu64 " bytes, want 4",
					      descsz);
			*abi = rd32(desc);
		}
		n = desc + desc_pad;
		left -= 12 + name_pad + desc_pad;
	}
	return 0;
}

/* Checks a static ELF64 x86-64 image against a RAM size and lists the segments
 * to load (see hv.h and the decisions above). Writes *out only on success.
 * Returns 0 or -ENOEXEC with a one-line reason in err. O(phnum + segments^2). */
int hv_elf_parse(const void *image, size_t size, uint64_t mem_size, struct hv_elf_image *out,
		 char *err, size_t errlen)
{
	const uint8_t *p = image;
	struct hv_elf_image img;
	Elf64_Ehdr eh;
	int rc;

	if (err && errlen > 0)
		err[0] = '\0';
	if (!p || size < sizeof(Elf64_Ehdr))
		return reject(err, errlen, "truncated: %zu bytes, an ELF64 header needs %zu",
			      p ? size : 0, sizeof(Elf64_Ehdr));
	read_ehdr(p, &eh);
	rc = check_ehdr(p, size, &eh, err, errlen);
	if (rc)
		return rc;

	uint64_t limit = 0;
	if (mem_size > HV_STACK_RESERVE)
		limit = (mem_size - HV_STACK_RESERVE) & ~PAGE_MASK;
	if (limit <= PV_IMAGE_MIN_GPA)
		return reject(err, errlen, "RAM of 0x%" PRIx64 " bytes leaves no room for an image",
			      mem_size);

	memset(&img, 0, sizeof(img));
	img.abi_version = 1;
	unsigned nload = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		read_phdr(p, eh.e_phoff, i, &ph);

		if (ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC)
			return reject(err, errlen, "segment %u: %s present, not a static image", i,
				      ph.p_type == PT_INTERP ? "PT_INTERP" : "PT_DYNAMIC");
		if (ph.p_type == PT_NOTE) {
			rc = scan_notes(p, size, &ph, i, &img.abi_version, err, errlen);
			if (rc)
				return rc;
		}
		if (ph.p_type != PT_LOAD)
			continue; /* PT_GNU_STACK, PT_GNU_PROPERTY...: nothing to do */
		nload++;
		rc = check_load(&ph, i, size, limit, err, errlen);
		if (rc)
			return rc;
		if (ph.p_memsz == 0)
			continue;
		if (img.nsegments == HV_ELF_MAX_SEGMENTS)
			return reject(err, errlen, "segment %u: more than %u loadable segments", i,
				      HV_ELF_MAX_SEGMENTS);

		uint64_t lo = ph.p_vaddr, hi = ph.p_vaddr + ph.p_memsz;
		for (unsigned j = 0; j < img.nsegments; j++) {
			const struct hv_elf_segment *o = &img.seg[j];
			if (lo < o->gpa + o->mem_size && o->gpa < hi)
				return reject(err, errlen,
					      "segment %u: [0x%" PRIx64 ", 0x%" PRIx64
					      ") overlaps an earlier segment at [0x%" PRIx64 ", 0x%" PRIx64 ")",
					      i, lo, hi, o->gpa, o->gpa + o->mem_size);
		}

		struct hv_elf_segment *s = &img.seg[img.nsegments++];
		s->gpa = ph.p_vaddr;
		s->file_off = ph.p_offset;
		s->file_size = ph.p_filesz;
		s->mem_size = ph.p_memsz;
		if (hi > img.end)
			img.end = hi;
		if ((ph.p_flags & PF_X) && eh.e_entry >= lo && eh.e_entry - lo < ph.p_filesz)
			img.entry = eh.e_entry;
	}
	if (nload == 0)
		return reject(err, errlen, "no PT_LOAD segment, nothing to load");
	if (img.nsegments == 0)
		return reject(err, errlen, "every PT_LOAD segment is empty, nothing to load");
	/* entry 0 is below PV_IMAGE_MIN_GPA, so 0 here means "not found". */
	if (img.entry == 0)
		return reject(err, errlen,
			      "entry 0x%" PRIx64 " not inside the file data of an executable segment",
			      eh.e_entry);

	if (img.abi_version < PV_ABI_VERSION_MIN || img.abi_version > PV_ABI_VERSION)
		return reject(err, errlen, "the image asks for ABI version %" PRIu32
			      "; this host serves %u to %u", img.abi_version, PV_ABI_VERSION_MIN,
			      PV_ABI_VERSION);

	/* end <= limit, which is page-aligned and far below 2^64: no overflow. */
	img.end = (img.end + PAGE_MASK) & ~PAGE_MASK;
	*out = img;
	return 0;
}
