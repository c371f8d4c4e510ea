/*
 * Parsers for what users type: sizes ("64M"), durations, disk specs. Pure
 * functions, unit-tested in tests/unit/test_parse.c. Each returns 0 or -EINVAL
 * (-ERANGE for a value that does not fit) and never accepts trailing garbage.
 */
#ifndef PVHA_PARSE_H
#define PVHA_PARSE_H

#include <stdint.h>

/* "4096", "512K", "64M", "2G" (binary units, upper or lower case). */
int pv_parse_size(const char *s, uint64_t *out);

/* A plain unsigned decimal number. */
int pv_parse_u64(const char *s, uint64_t *out);

enum pv_disk_kind { PV_DISK_FILE = 1, PV_DISK_RADOS };

struct pv_disk_spec {
	enum pv_disk_kind kind;
	char path[4096];   /* file: the image path */
	char pool[128];    /* rados: pool */
	char name[128];    /* rados: guest (disk) name */
	uint64_t size;     /* size= option, 0 = none */
};

/* "file:PATH[,size=SIZE]" or "rados:POOL/NAME[,size=SIZE]". */
int pv_parse_disk_spec(const char *s, struct pv_disk_spec *out);

#endif /* PVHA_PARSE_H */
