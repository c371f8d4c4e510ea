/* Length-prefixed protobuf frames; see pvproto/frame.h. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "pvproto/frame.h"

#define FRAME_HARD_MAX (64u * 1024u * 1024u)

int pvproto_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t pvproto_read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int pvproto_frame_write(int fd, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	if (len > FRAME_HARD_MAX)
		return -EMSGSIZE;
	uint8_t *buf = malloc(len + 4);
	if (!buf)
		return -ENOMEM;
	buf[0] = (uint8_t)len;
	buf[1] = (uint8_t)(len >> 8);
	buf[2] = (uint8_t)(len >> 16);
	buf[3] = (uint8_t)(len >> 24);
	protobuf_c_message_pack(msg, buf + 4);
	int err = pvproto_write_all(fd, buf, len + 4);
	free(buf);
	return err;
}

int pvproto_frame_read(int fd, const ProtobufCMessageDescriptor *desc, size_t max,
		       ProtobufCMessage **out)
{
	uint8_t hdr[4];
	*out = NULL;
	ssize_t n = pvproto_read_all(fd, hdr, sizeof(hdr));
	if (n < 0)
		return (int)n;
	if (n == 0)
		return -ENODATA;
	if (n < 4)
		return -EBADMSG;
	size_t len = (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 |
		     (size_t)hdr[3] << 24;
	if (len > max || len > FRAME_HARD_MAX)
		return -EMSGSIZE;
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	n = pvproto_read_all(fd, buf, len);
	if (n < 0 || (size_t)n < len) {
		free(buf);
		return n < 0 ? (int)n : -EBADMSG;
	}
	*out = protobuf_c_message_unpack(desc, NULL, len, buf);
	free(buf);
	return *out ? 0 : -EBADMSG;
}
