//go:build !amd64 || purego

package sanitize

const haveSHANI = false

func blockSHANI(*[8]uint32, []byte) { panic("sanitize: no SHA-NI") }
