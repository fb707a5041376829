package chunker

// goldenGear0 is entries 0, 1 and 255 of NewGear(all-zero key), checked
// independently against Python's hmac/hashlib HKDF-SHA256.
var goldenGear0 = [3]uint64{0x73605d79388e21a3, 0xa978003bfa5cc2a, 0xd7f7cbbeda0c0047}

// goldenSizes are the chunk sizes of randomData(40, 256 KiB) with the
// all-zero key and smallParams.
var goldenSizes = []int{8847, 10690, 2783, 9309, 13532, 10269, 11280, 9971, 12880, 8201, 10362, 12038, 11139, 7627, 14048, 3746, 11709, 8434, 9251, 8280, 8965, 9942, 9087, 10667, 9985, 8516, 10586}
