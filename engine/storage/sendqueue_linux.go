package storage

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// sendQueue returns the bytes of c not yet acknowledged by the peer
// (SIOCOUTQ), or 0 when it cannot tell.
func sendQueue(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	q := 0
	_ = rc.Control(func(fd uintptr) {
		if n, err := unix.IoctlGetInt(int(fd), unix.TIOCOUTQ); err == nil {
			q = n
		}
	})
	return q
}
