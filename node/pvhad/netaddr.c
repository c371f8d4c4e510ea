/* A guest's address on this node's interface: see netaddr.h. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "pvstore/pvstore.h"

/* One RTM_NEWADDR / RTM_DELADDR request, acknowledged. */
static int addr_request(int ifindex, uint32_t ip, unsigned prefix, bool add, char *why, size_t whylen)
{
	struct {
		struct nlmsghdr nh;
		struct ifaddrmsg ifa;
		char attrs[64];
	} req;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.ifa));
	req.nh.nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
	req.nh.nlmsg_seq = 1;
	req.ifa.ifa_family = AF_INET;
	req.ifa.ifa_prefixlen = (unsigned char)prefix;
	req.ifa.ifa_index = (unsigned)ifindex;
	req.ifa.ifa_scope = RT_SCOPE_UNIVERSE;
	uint32_t be = htonl(ip);
	static const unsigned short types[] = { IFA_LOCAL, IFA_ADDRESS };
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		unsigned short type = types[t];
		struct rtattr *rta = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
		rta->rta_type = type;
		rta->rta_len = RTA_LENGTH(sizeof(be));
		memcpy(RTA_DATA(rta), &be, sizeof(be));
		req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
	}
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0) {
		snprintf(why, whylen, "netlink socket: %s", strerror(errno));
		return -errno;
	}
	struct timeval tv = { .tv_sec = 2 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int err = 0;
	if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
	} else {
		char buf[512];
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		if (n < 0)
			err = -errno;
		else if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) || h->nlmsg_type != NLMSG_ERROR)
			err = -EBADMSG;
		else
			err = ((struct nlmsgerr *)NLMSG_DATA(h))->error; /* 0 or -errno */
	}
	close(fd);
	if (err)
		snprintf(why, whylen, "%s address: %s", add ? "adding the" : "removing the", strerror(-err));
	return err;
}

/* Gratuitous ARP: an ARP request for ip from ip, to everyone on the link, so
 * that neighbours' caches point at this host at once. */
static int announce(int ifindex, uint32_t ip, char *why, size_t whylen)
{
	int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP));
	if (fd < 0) {
		snprintf(why, whylen, "ARP socket: %s", strerror(errno));
		return -errno;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	if (!if_indextoname((unsigned)ifindex, ifr.ifr_name) || ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
		int err = -errno;
		snprintf(why, whylen, "the interface's hardware address: %s", strerror(errno));
		close(fd);
		return err;
	}
	struct {
		struct arphdr h;
		unsigned char sha[ETH_ALEN];
		uint32_t spa;
		unsigned char tha[ETH_ALEN];
		uint32_t tpa;
	} __attribute__((packed)) pkt;
	pkt.h.ar_hrd = htons(ARPHRD_ETHER);
	pkt.h.ar_pro = htons(ETH_P_IP);
	pkt.h.ar_hln = ETH_ALEN;
	pkt.h.ar_pln = 4;
	pkt.h.ar_op = htons(ARPOP_REQUEST);
	memcpy(pkt.sha, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	pkt.spa = htonl(ip);
	memset(pkt.tha, 0, ETH_ALEN);
	pkt.tpa = htonl(ip);
	struct sockaddr_ll to = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ARP),
		.sll_ifindex = ifindex,
		.sll_halen = ETH_ALEN,
	};
	memset(to.sll_addr, 0xff, ETH_ALEN);
	int err = 0;
	if (sendto(fd, &pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
		err = -errno;
		snprintf(why, whylen, "gratuitous ARP: %s", strerror(errno));
	}
	close(fd);
	return err;
}

int netaddr_set(const char *ifname, const char *address, bool up, char *why, size_t whylen)
{
	uint32_t ip = pvstore_address_ip(address);
	const char *slash = strchr(address, '/');
	if (!ip || !slash) {
		snprintf(why, whylen, "'%s' is not IP/PREFIX", address);
		return -EINVAL;
	}
	unsigned prefix = (unsigned)atoi(slash + 1);
	int ifindex = (int)if_nametoindex(ifname);
	if (!ifindex) {
		snprintf(why, whylen, "interface %s: %s", ifname, strerror(errno));
		return -ENODEV;
	}
	int err = addr_request(ifindex, ip, prefix, up, why, whylen);
	if (up && err == -EEXIST)
		err = 0; /* already here (an agent restarted while its guest ran) */
	if (!up && err == -EADDRNOTAVAIL)
		err = 0; /* already gone */
	if (err || !up)
		return err;
	/* twice: one lost frame must not leave a neighbour pointing elsewhere */
	err = announce(ifindex, ip, why, whylen);
	if (!err)
		err = announce(ifindex, ip, why, whylen);
	return err;
}
