/*
 * The dashboard's static files (node/pvhad/web/), compiled into pvhad by
 * web_embed.cmake: no file is read at run time and nothing comes from
 * elsewhere. Read-only; any thread.
 */
#ifndef PVHAD_WEB_ASSETS_H
#define PVHAD_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
	const char *path;          /* "/index.html" */
	const char *content_type;
	const unsigned char *data;
	size_t len;
};

/* Ends with an entry whose path is NULL. */
extern const struct web_asset web_assets[];

#endif
