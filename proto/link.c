/* Frames, plain or authenticated; see pvproto/link.h and pvproto/frame.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pvproto/frame.h"
#include "pvproto/link.h"

#define FRAME_HARD_MAX (64u * 1024u * 1024u)
#define IV_BYTES 12

struct pvproto_link {
	int fd;
	bool sealed;
	EVP_CIPHER_CTX *tx, *rx; /* AES-256-GCM, keyed with the session key */
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
	/* the contexts hold the key: freeing them clears it */
	EVP_CIPHER_CTX_free(l->tx);
	EVP_CIPHER_CTX_free(l->rx);
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
	uint8_t session[32], info[128 + 2 * PVPROTO_NONCE_BYTES];
	unsigned int slen = sizeof(session);
	size_t lab;

	if (!secret || secret_len < PVPROTO_KEY_MIN || secret_len > PVPROTO_KEY_MAX || !label ||
	    (lab = strlen(label) + 1) > 128 || l->sealed)
		return -EINVAL;
	memcpy(info, label, lab);
	memcpy(info + lab, nonce_a, PVPROTO_NONCE_BYTES);
	memcpy(info + lab + PVPROTO_NONCE_BYTES, nonce_b, PVPROTO_NONCE_BYTES);
	if (!HMAC(EVP_sha256(), secret, (int)secret_len, info, lab + 2 * PVPROTO_NONCE_BYTES, session,
		  &slen))
		return -EIO;
	l->tx = EVP_CIPHER_CTX_new();
	l->rx = EVP_CIPHER_CTX_new();
	int ok = l->tx && l->rx &&
		 EVP_EncryptInit_ex(l->tx, EVP_aes_256_gcm(), NULL, session, NULL) == 1 &&
		 EVP_DecryptInit_ex(l->rx, EVP_aes_256_gcm(), NULL, session, NULL) == 1;
	OPENSSL_cleanse(session, sizeof(session));
	if (!ok) {
		EVP_CIPHER_CTX_free(l->tx);
		EVP_CIPHER_CTX_free(l->rx);
		l->tx = l->rx = NULL;
		return -ENOMEM;
	}
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

/* The GCM nonce of frame seq in direction dir: dir, three zeros, seq. Each
 * session key is fresh (both sides' nonces), and within it the direction and
 * the sequence number never repeat. */
static void frame_iv(uint8_t iv[IV_BYTES], uint8_t dir, uint64_t seq)
{
	iv[0] = dir;
	iv[1] = iv[2] = iv[3] = 0;
	put_le(iv + 4, seq, 8);
}

/* Encrypts the payload of frame (4-byte length, then len bytes) in place and
 * writes the tag after it; the length is authenticated as associated data. */
static int seal_frame(struct pvproto_link *l, uint8_t *frame, size_t len)
{
	uint8_t iv[IV_BYTES];
	int n;
	frame_iv(iv, l->tx_dir, l->tx_seq++);
	if (EVP_EncryptInit_ex(l->tx, NULL, NULL, NULL, iv) != 1 ||
	    EVP_EncryptUpdate(l->tx, NULL, &n, frame, 4) != 1 ||
	    (len && EVP_EncryptUpdate(l->tx, frame + 4, &n, frame + 4, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(l->tx, frame + 4 + len, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(l->tx, EVP_CTRL_GCM_GET_TAG, PVPROTO_TAG_BYTES, frame + 4 + len) != 1)
		return -EIO;
	return 0;
}

/* Checks the tag of frame and decrypts its payload in place. -EKEYREJECTED
 * when the tag does not verify (the payload is then garbage, never used). */
static int open_frame(struct pvproto_link *l, uint8_t *frame, size_t len)
{
	uint8_t iv[IV_BYTES];
	int n;
	frame_iv(iv, l->rx_dir, l->rx_seq);
	if (EVP_DecryptInit_ex(l->rx, NULL, NULL, NULL, iv) != 1 ||
	    EVP_DecryptUpdate(l->rx, NULL, &n, frame, 4) != 1 ||
	    (len && EVP_DecryptUpdate(l->rx, frame + 4, &n, frame + 4, (int)len) != 1) ||
	    EVP_CIPHER_CTX_ctrl(l->rx, EVP_CTRL_GCM_SET_TAG, PVPROTO_TAG_BYTES, frame + 4 + len) != 1)
		return -EIO;
	if (EVP_DecryptFinal_ex(l->rx, frame + 4 + len, &n) != 1)
		return -EKEYREJECTED;
	l->rx_seq++;
	return 0;
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
	int err = l->sealed ? seal_frame(l, buf, len) : 0;
	if (!err)
		err = pvproto_write_all(l->fd, buf, 4 + len + tag);
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
		int err = open_frame(l, buf, len);
		if (err) {
			free(buf);
			return err;
		}
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
