/*
 * Fuzz harness: the frames pvha reads from other processes and from
 * storage, unpacked with the reader every caller uses (pvproto_frame_read,
 * the length bounded first) and then validated where a validator exists.
 * The first byte picks the message: the control API (ApiRequest, ApiReply),
 * the VMM control socket (VmmRequest, VmmReply), CPG messages (ClusterMsg),
 * live migration (MigrateAuth, MigrateHello, MigrateMsg, StateRecord), a
 * guest record from storage (pvstore_guest_decode: decode and every check);
 * the second byte's low bit reads it through a sealed link (fixed key and
 * nonces, so a run is reproducible) to reach the tag check.
 */
#include <unistd.h>

#include "fuzz.h"
#include "proto/api.pb-c.h"
#include "proto/cluster.pb-c.h"
#include "proto/migrate.pb-c.h"
#include "proto/vmm.pb-c.h"
#include "proto/vmstate.pb-c.h"
#include "pvproto/frame.h"
#include "pvproto/link.h"
#include "pvstore/pvstore.h"

static const ProtobufCMessageDescriptor *const kinds[] = {
	&pvha__api_request__descriptor,	 &pvha__api_reply__descriptor,
	&pvha__vmm_request__descriptor,	 &pvha__vmm_reply__descriptor,
	&pvha__cluster_msg__descriptor,	 &pvha__migrate_auth__descriptor,
	&pvha__migrate_hello__descriptor, &pvha__migrate_msg__descriptor,
	&pvha__state_record__descriptor,
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[32] = "fuzzing-key-fuzzing-key-fuzzing";
	static const uint8_t na[PVPROTO_NONCE_BYTES] = { 1 }, nb[PVPROTO_NONCE_BYTES] = { 2 };
	if (size < 2)
		return 0;
	unsigned kind = data[0] % (NKINDS + 1);
	bool sealed = data[1] & 1;
	data += 2;
	size -= 2;
	if (kind == NKINDS) {
		/* a guest record as read from guest.<uuid> */
		static const uint8_t uuid[16] = { 0x0d, 0x1f, 0x7a, 0x5e };
		struct pvstore_guest g;
		(void)pvstore_guest_decode("guest.fuzz", uuid, data, size, &g);
		return 0;
	}
	int fd = fuzz_memfd(data, size);
	struct pvproto_link *l = pvproto_link_create(fd);
	if (l && sealed)
		(void)pvproto_link_seal(l, key, sizeof(key), PVPROTO_LABEL_MIGRATE, na, nb, false);
	/* frames until the input ends or one is refused */
	for (int i = 0; l && i < 64; i++) {
		ProtobufCMessage *m;
		if (pvproto_link_read(l, kinds[kind], 1u << 20, &m) != 0)
			break;
		protobuf_c_message_free_unpacked(m, NULL);
	}
	pvproto_link_destroy(l);
	close(fd);
	return 0;
}
