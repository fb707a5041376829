//go:build amd64 && !purego

package sanitize

import "golang.org/x/sys/cpu"

// blockSHANI runs SHA-256's compression on state for each whole 64-byte
// block of p (SHA-NI; Go's own, see hmac_amd64.s).
//
//go:noescape
func blockSHANI(dig *[8]uint32, p []byte)

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

// haveSHANI: the CPU and OS run blockSHANI (as Go's sha256 decides).
var haveSHANI = func() bool {
	if !cpu.X86.HasAVX || !cpu.X86.HasSSE41 || !cpu.X86.HasSSSE3 {
		return false
	}
	if max, _, _, _ := cpuid(0, 0); max < 7 {
		return false
	}
	_, ebx, _, _ := cpuid(7, 0)
	return ebx&(1<<29) != 0
}()
