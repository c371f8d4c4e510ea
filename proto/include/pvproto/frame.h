/*
 * Framing for every pvha stream of protobuf messages (saved state, migration,
 * control sockets): a 4-byte little-endian length, then the packed message.
 * Readers bound the length before allocating and unpack with protobuf-c, so a
 * hostile peer can neither make us allocate without limit nor feed us a
 * message that does not decode. Blocking I/O on the fd; EINTR is retried.
 */
#ifndef PVPROTO_FRAME_H
#define PVPROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

/* Writes one frame. Returns 0 or -errno (-EMSGSIZE above 64 MiB). */
int pvproto_frame_write(int fd, const ProtobufCMessage *msg);

/* Reads one frame of at most max bytes and unpacks it as desc. Returns 0 and
 * *out (free with protobuf_c_message_free_unpacked(*out, NULL)); -ENODATA at a
 * clean end of stream before the frame; -EBADMSG for a truncated frame or one
 * that does not decode; -EMSGSIZE when the length exceeds max; other -errno. */
int pvproto_frame_read(int fd, const ProtobufCMessageDescriptor *desc, size_t max,
		       ProtobufCMessage **out);

/* write() until done. Returns 0 or -errno (-EPIPE when the peer closed). */
int pvproto_write_all(int fd, const void *buf, size_t len);

/* read() until len bytes. Returns len, fewer at end of stream, or -errno. */
ssize_t pvproto_read_all(int fd, void *buf, size_t len);

#endif /* PVPROTO_FRAME_H */
