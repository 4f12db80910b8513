// Package netns owns network namespaces, the bridge, veth pairs, IPAM,
// port publishing and the hosts/resolv.conf files of containers.
//
// It imports no other berth package.
package netns
