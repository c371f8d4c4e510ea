/* Frames, plain or authenticated; see pvproto/link.h and pvproto/frame.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <nettle/hmac.h>
#include <nettle/memops.h>

#include "pvproto/frame.h"
#include "pvproto/link.h"

#define FRAME_HARD_MAX (64u * 1024u * 1024u)

struct pvproto_link {
	int fd;
	bool sealed;
	struct hmac_sha256_ctx key; /* keyed with the session key; copied per frame */
	uint8_t tx_dir, rx_dir;
	uint64_t tx_seq, rx_seq;
};

struct pvproto_link *pvproto_link_create(int fd)
{
	struct pvproto_link *l = calloc(1, sizeof(*l));
	if (l)
		l->fd = fd;
	return l;
}

void pvproto_link_destroy(struct pvproto_link *l)
{
	if (!l)
		return;
	/* the keyed state is a secret */
	memset(l, 0, sizeof(*l));
	free(l);
}

int pvproto_link_fd(const struct pvproto_link *l)
{
	return l->fd;
}

bool pvproto_link_sealed(const struct pvproto_link *l)
{
	return l->sealed;
}

int pvproto_link_seal(struct pvproto_link *l, const uint8_t *secret, size_t secret_len,
		      const char *label, const uint8_t nonce_a[PVPROTO_NONCE_BYTES],
		      const uint8_t nonce_b[PVPROTO_NONCE_BYTES], bool initiator)
{
	struct hmac_sha256_ctx kdf;
	uint8_t session[SHA256_DIGEST_SIZE];

	if (!secret || secret_len < PVPROTO_KEY_MIN || secret_len > PVPROTO_KEY_MAX || !label)
		return -EINVAL;
	hmac_sha256_set_key(&kdf, secret_len, secret);
	hmac_sha256_update(&kdf, strlen(label) + 1, (const uint8_t *)label);
	hmac_sha256_update(&kdf, PVPROTO_NONCE_BYTES, nonce_a);
	hmac_sha256_update(&kdf, PVPROTO_NONCE_BYTES, nonce_b);
	hmac_sha256_digest(&kdf, sizeof(session), session);
	hmac_sha256_set_key(&l->key, sizeof(session), session);
	memset(session, 0, sizeof(session));
	memset(&kdf, 0, sizeof(kdf));
	l->sealed = true;
	l->tx_dir = initiator ? 'I' : 'R';
	l->rx_dir = initiator ? 'R' : 'I';
	l->tx_seq = 0;
	l->rx_seq = 0;
	return 0;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The tag of one frame: HMAC(session, dir || seq || len || payload), where
 * frame holds the 4-byte length and then the payload. */
static void frame_tag(const struct pvproto_link *l, uint8_t dir, uint64_t seq, const uint8_t *frame,
		      size_t payload_len, uint8_t tag[PVPROTO_TAG_BYTES])
{
	struct hmac_sha256_ctx c = l->key;
	uint8_t pre[9];
	pre[0] = dir;
	put_le(pre + 1, seq, 8);
	hmac_sha256_update(&c, sizeof(pre), pre);
	hmac_sha256_update(&c, 4 + payload_len, frame);
	hmac_sha256_digest(&c, PVPROTO_TAG_BYTES, tag);
}

int pvproto_link_write(struct pvproto_link *l, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	size_t tag = l->sealed ? PVPROTO_TAG_BYTES : 0;
	if (len > FRAME_HARD_MAX)
		return -EMSGSIZE;
	uint8_t *buf = malloc(4 + len + tag);
	if (!buf)
		return -ENOMEM;
	put_le(buf, len, 4);
	protobuf_c_message_pack(msg, buf + 4);
	if (l->sealed)
		frame_tag(l, l->tx_dir, l->tx_seq++, buf, len, buf + 4 + len);
	int err = pvproto_write_all(l->fd, buf, 4 + len + tag);
	free(buf);
	return err;
}

int pvproto_link_read(struct pvproto_link *l, const ProtobufCMessageDescriptor *desc, size_t max,
		      ProtobufCMessage **out)
{
	uint8_t hdr[4];
	size_t tag = l->sealed ? PVPROTO_TAG_BYTES : 0;
	*out = NULL;
	ssize_t n = pvproto_read_all(l->fd, hdr, sizeof(hdr));
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
	uint8_t *buf = malloc(4 + len + tag);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, hdr, 4);
	n = pvproto_read_all(l->fd, buf + 4, len + tag);
	if (n < 0 || (size_t)n < len + tag) {
		free(buf);
		return n < 0 ? (int)n : -EBADMSG;
	}
	if (l->sealed) {
		uint8_t want[PVPROTO_TAG_BYTES];
		frame_tag(l, l->rx_dir, l->rx_seq, buf, len, want);
		if (!memeql_sec(want, buf + 4 + len, PVPROTO_TAG_BYTES)) {
			free(buf);
			return -EKEYREJECTED;
		}
		l->rx_seq++;
	}
	*out = protobuf_c_message_unpack(desc, NULL, len, buf + 4);
	free(buf);
	return *out ? 0 : -EBADMSG;
}

int pvproto_frame_write(int fd, const ProtobufCMessage *msg)
{
	struct pvproto_link plain = { .fd = fd };
	return pvproto_link_write(&plain, msg);
}

int pvproto_frame_read(int fd, const ProtobufCMessageDescriptor *desc, size_t max,
		       ProtobufCMessage **out)
{
	struct pvproto_link plain = { .fd = fd };
	return pvproto_link_read(&plain, desc, max, out);
}

int pvproto_random(void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
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
