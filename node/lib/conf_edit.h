/*
 * pvhad.conf as lines, for a program that fills some keys in and keeps the
 * rest (pvha cluster init / node join): every comment, blank line and other
 * key stays verbatim, a commented-out "#key = ..." line (the package's
 * template) becomes the key, and a key that is already set to another value
 * is never changed. The format is pvhad's (`key = value`, `#` starts a
 * comment). Pure except conf_edit_load; one object per file, no threads.
 */
#ifndef PVHA_CONF_EDIT_H
#define PVHA_CONF_EDIT_H

#include <stdbool.h>
#include <stddef.h>

#define CONF_EDIT_LINES_MAX 512
#define CONF_EDIT_LINE_MAX 1200 /* bytes with the newline, as pvhad reads them */

struct conf_edit {
	char *line[CONF_EDIT_LINES_MAX]; /* without their newlines */
	size_t n;
	bool exists; /* conf_edit_load found a file */
};

/* Splits text into f's lines (f must be empty). Returns 0, -E2BIG (more than
 * CONF_EDIT_LINES_MAX lines, or one longer than CONF_EDIT_LINE_MAX) or
 * -ENOMEM; on error f is empty. O(length). */
int conf_edit_parse(struct conf_edit *f, const char *text);

/* Reads path into f; a missing file is an empty f with exists false.
 * Returns 0, -E2BIG, -ENOMEM, or -errno of open/read. */
int conf_edit_load(struct conf_edit *f, const char *path);

/* Frees f's lines; f is empty afterwards. */
void conf_edit_free(struct conf_edit *f);

/* The value of key's first active (not commented) line, trimmed and without
 * a trailing comment, into val (cut to vallen). false when no line sets it. */
bool conf_edit_get(const struct conf_edit *f, const char *key, char *val, size_t vallen);

/* Sets key = val: nothing when an active line already has this value; else
 * the first "#key = ..." line becomes "key = val"; else the line is added at
 * the end. Returns 0, -EEXIST (an active line sets key to another value:
 * nothing changed), -EINVAL (key not [a-z_]+, or val empty or holding '#',
 * a newline or leading/trailing blanks, which the format cannot carry),
 * -E2BIG (no room) or -ENOMEM. */
int conf_edit_set(struct conf_edit *f, const char *key, const char *val);

/* The whole file, each line with its newline: malloc'd, NUL-terminated, its
 * length in *len. NULL when out of memory. */
char *conf_edit_text(const struct conf_edit *f, size_t *len);

#endif
