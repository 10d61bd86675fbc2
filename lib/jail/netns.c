/*
 * lib/jail/netns.c - the VMM's network namespace (jailer.h).
 *
 * QEMU's user networking (slirp) turns a guest's connection into an
 * ordinary connect() from the QEMU process. In a fresh namespace that
 * connect() could reach nothing at all; but the profile's allowed
 * destinations must work, so every IPv4 address is made local to the
 * namespace's loopback ("local 0.0.0.0/0 dev lo" in the local table):
 * whatever the guest dials lands on this namespace's own sockets, where
 * the relay listens on the ports of the profile and decides, destination
 * by destination, what it connects on the host's side. A port without a
 * listener refuses at once. Nothing of the host's network (its loopback
 * with Redis and PostgreSQL, its addresses, the cloud metadata service)
 * exists in here.
 */
#include <errno.h>
#include <net/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jail/jailer.h"

static int loopback_up(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc;

	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
	if (rc == 0) {
		ifr.ifr_flags |= IFF_UP;
		rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
	return rc;
}

/* RTM_NEWROUTE "local 0.0.0.0/0 dev lo table local", waiting for the ack. */
static int route_all_local(void)
{
	struct {
		struct nlmsghdr n;
		struct rtmsg r;
		char attrs[64];
	} req;
	struct rtattr *a;
	unsigned int lo = if_nametoindex("lo");
	char reply[512];
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	int fd, rc = -1;
	ssize_t n;

	if (lo == 0)
		return -1;
	memset(&req, 0, sizeof(req));
	req.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
	req.n.nlmsg_type = RTM_NEWROUTE;
	req.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
	req.n.nlmsg_seq = 1;
	req.r.rtm_family = AF_INET;
	req.r.rtm_dst_len = 0;
	req.r.rtm_table = RT_TABLE_LOCAL;
	req.r.rtm_protocol = RTPROT_BOOT;
	req.r.rtm_scope = RT_SCOPE_HOST;
	req.r.rtm_type = RTN_LOCAL;
	a = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.n.nlmsg_len));
	a->rta_type = RTA_OIF;
	a->rta_len = RTA_LENGTH(sizeof(lo));
	memcpy(RTA_DATA(a), &lo, sizeof(lo));
	req.n.nlmsg_len = NLMSG_ALIGN(req.n.nlmsg_len) + RTA_ALIGN(a->rta_len);

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -1;
	if (sendto(fd, &req, req.n.nlmsg_len, 0, (struct sockaddr *)&kernel,
		   sizeof(kernel)) < 0)
		goto out;
	n = recv(fd, reply, sizeof(reply), 0);
	if (n >= (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
		struct nlmsghdr *h = (struct nlmsghdr *)reply;
		struct nlmsgerr *e = NLMSG_DATA(h);

		if (h->nlmsg_type == NLMSG_ERROR) {
			errno = -e->error;
			rc = e->error == 0 ? 0 : -1;
		}
	}
out:
	close(fd);
	return rc;
}

int jail_netns_setup(void)
{
	if (loopback_up() != 0)
		return -1;
	return route_all_local();
}
