package main

import "net"

type (
	netConn   = net.Conn
	netDialer = net.Dialer
)
