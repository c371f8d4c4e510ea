/*
 * A sealed frame link: the frames of pvproto/frame.h over one fd, and once
 * the link is sealed each frame's payload is encrypted and authenticated
 * with AES-256-GCM under a session key: the 4-byte length is associated
 * data, the nonce is (direction, sequence number), the 16-byte tag follows
 * the payload. A reader checks the tag before it unpacks anything, so an
 * altered, replayed, reordered, dropped or foreign frame is refused
 * (-EKEYREJECTED) and nothing in it is believed; and what crosses the wire
 * (guest RAM) is not readable. Used by live migration (docs/migration.md:
 * the handshake, and why this rather than TLS); an unsealed link is the
 * plain framing.
 *
 * The primitives are OpenSSL libcrypto's (AES-256-GCM through EVP, the key
 * derivation HMAC-SHA256); nonces come from getrandom(2). Nothing here
 * implements a primitive of its own.
 *
 * Threading: a link is used by one thread at a time (sequence numbers).
 */
#ifndef PVPROTO_LINK_H
#define PVPROTO_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define PVPROTO_NONCE_BYTES 32u
#define PVPROTO_KEY_MIN 16u   /* bytes of a migration secret, at least */
#define PVPROTO_KEY_MAX 256u
#define PVPROTO_TAG_BYTES 16u
/* The label live migration derives its session key with (docs/migration.md). */
#define PVPROTO_LABEL_MIGRATE "pvha migrate v2"

struct pvproto_link;

/* A plain (unsealed) link over fd; the fd stays the caller's. Returns NULL
 * when out of memory. */
struct pvproto_link *pvproto_link_create(int fd);
void pvproto_link_destroy(struct pvproto_link *l);
int pvproto_link_fd(const struct pvproto_link *l);
bool pvproto_link_sealed(const struct pvproto_link *l);

/* Seals the link: from now on every frame written is encrypted and tagged,
 * and every frame read must open. The session key is
 * HMAC-SHA256(secret, label || NUL || nonce_a || nonce_b), so the two sides
 * of one handshake (both nonces, each side's fresh) share it and no other
 * session does; frames written by the side named `initiator` use direction
 * 'I' in their nonce, the other side's 'R'. Sequence numbers start at 0.
 * Returns 0, -EINVAL for a secret shorter than PVPROTO_KEY_MIN or longer
 * than PVPROTO_KEY_MAX (or a link sealed already), -ENOMEM. */
int pvproto_link_seal(struct pvproto_link *l, const uint8_t *secret, size_t secret_len,
		      const char *label, const uint8_t nonce_a[PVPROTO_NONCE_BYTES],
		      const uint8_t nonce_b[PVPROTO_NONCE_BYTES], bool initiator);

/* Writes one frame (sealed when the link is). Returns 0 or -errno as
 * pvproto_frame_write. Cost: one pack; sealed, one AES-GCM pass over the
 * payload in place (several GB/s with AES-NI). */
int pvproto_link_write(struct pvproto_link *l, const ProtobufCMessage *msg);

/* Reads one frame of at most max payload bytes, opens it (checks its tag
 * and decrypts it) when sealed, and unpacks it. Returns as pvproto_frame_read, and -EKEYREJECTED when the
 * tag does not verify (nothing of the frame is unpacked). The length is
 * bounded before anything is allocated. */
int pvproto_link_read(struct pvproto_link *l, const ProtobufCMessageDescriptor *desc, size_t max,
		      ProtobufCMessage **out);

/* Fills buf with len bytes from the kernel's CSPRNG. Returns 0 or -errno. */
int pvproto_random(void *buf, size_t len);

#endif /* PVPROTO_LINK_H */
