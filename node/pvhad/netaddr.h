/*
 * A guest's address on this node (docs/network.md): added to the interface
 * named by pvhad.conf's guest_interface before the guest's VMM starts here
 * (and announced with gratuitous ARP, so that neighbours' caches follow at
 * once), removed when it stops. Netlink and a packet socket: needs
 * CAP_NET_ADMIN and CAP_NET_RAW (pvhad runs as root). Blocking, but each
 * call is one netlink round trip and two frames (well under a millisecond).
 */
#ifndef PVHAD_NETADDR_H
#define PVHAD_NETADDR_H

#include <stdbool.h>
#include <stddef.h>

/* Adds (and announces) or removes address ("A.B.C.D/P") on ifname. Adding
 * an address that is there, or removing one that is not, is not an error.
 * Returns 0, or -errno with the reason in why. */
int netaddr_set(const char *ifname, const char *address, bool up, char *why, size_t whylen);

#endif
