// blockSHANI and its tables are Go's crypto/internal/fips140/sha256
// (sha256block_amd64.s, go1.26), renamed: Copyright 2017 The Go Authors,
// BSD-style license (the Go LICENSE file). Go does not export its block
// function; the fakes' HMAC calls it directly (hmac.go).

//go:build amd64 && !purego

#include "textflag.h"

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

DATA shaniFlipMask<>+0(SB)/8, $0x0405060700010203
DATA shaniFlipMask<>+8(SB)/8, $0x0c0d0e0f08090a0b
DATA shaniFlipMask<>+16(SB)/8, $0x0405060700010203
DATA shaniFlipMask<>+24(SB)/8, $0x0c0d0e0f08090a0b
GLOBL shaniFlipMask<>(SB), RODATA, $32

DATA shaniK256<>+0(SB)/4, $0x428a2f98
DATA shaniK256<>+4(SB)/4, $0x71374491
DATA shaniK256<>+8(SB)/4, $0xb5c0fbcf
DATA shaniK256<>+12(SB)/4, $0xe9b5dba5
DATA shaniK256<>+16(SB)/4, $0x428a2f98
DATA shaniK256<>+20(SB)/4, $0x71374491
DATA shaniK256<>+24(SB)/4, $0xb5c0fbcf
DATA shaniK256<>+28(SB)/4, $0xe9b5dba5
DATA shaniK256<>+32(SB)/4, $0x3956c25b
DATA shaniK256<>+36(SB)/4, $0x59f111f1
DATA shaniK256<>+40(SB)/4, $0x923f82a4
DATA shaniK256<>+44(SB)/4, $0xab1c5ed5
DATA shaniK256<>+48(SB)/4, $0x3956c25b
DATA shaniK256<>+52(SB)/4, $0x59f111f1
DATA shaniK256<>+56(SB)/4, $0x923f82a4
DATA shaniK256<>+60(SB)/4, $0xab1c5ed5
DATA shaniK256<>+64(SB)/4, $0xd807aa98
DATA shaniK256<>+68(SB)/4, $0x12835b01
DATA shaniK256<>+72(SB)/4, $0x243185be
DATA shaniK256<>+76(SB)/4, $0x550c7dc3
DATA shaniK256<>+80(SB)/4, $0xd807aa98
DATA shaniK256<>+84(SB)/4, $0x12835b01
DATA shaniK256<>+88(SB)/4, $0x243185be
DATA shaniK256<>+92(SB)/4, $0x550c7dc3
DATA shaniK256<>+96(SB)/4, $0x72be5d74
DATA shaniK256<>+100(SB)/4, $0x80deb1fe
DATA shaniK256<>+104(SB)/4, $0x9bdc06a7
DATA shaniK256<>+108(SB)/4, $0xc19bf174
DATA shaniK256<>+112(SB)/4, $0x72be5d74
DATA shaniK256<>+116(SB)/4, $0x80deb1fe
DATA shaniK256<>+120(SB)/4, $0x9bdc06a7
DATA shaniK256<>+124(SB)/4, $0xc19bf174
DATA shaniK256<>+128(SB)/4, $0xe49b69c1
DATA shaniK256<>+132(SB)/4, $0xefbe4786
DATA shaniK256<>+136(SB)/4, $0x0fc19dc6
DATA shaniK256<>+140(SB)/4, $0x240ca1cc
DATA shaniK256<>+144(SB)/4, $0xe49b69c1
DATA shaniK256<>+148(SB)/4, $0xefbe4786
DATA shaniK256<>+152(SB)/4, $0x0fc19dc6
DATA shaniK256<>+156(SB)/4, $0x240ca1cc
DATA shaniK256<>+160(SB)/4, $0x2de92c6f
DATA shaniK256<>+164(SB)/4, $0x4a7484aa
DATA shaniK256<>+168(SB)/4, $0x5cb0a9dc
DATA shaniK256<>+172(SB)/4, $0x76f988da
DATA shaniK256<>+176(SB)/4, $0x2de92c6f
DATA shaniK256<>+180(SB)/4, $0x4a7484aa
DATA shaniK256<>+184(SB)/4, $0x5cb0a9dc
DATA shaniK256<>+188(SB)/4, $0x76f988da
DATA shaniK256<>+192(SB)/4, $0x983e5152
DATA shaniK256<>+196(SB)/4, $0xa831c66d
DATA shaniK256<>+200(SB)/4, $0xb00327c8
DATA shaniK256<>+204(SB)/4, $0xbf597fc7
DATA shaniK256<>+208(SB)/4, $0x983e5152
DATA shaniK256<>+212(SB)/4, $0xa831c66d
DATA shaniK256<>+216(SB)/4, $0xb00327c8
DATA shaniK256<>+220(SB)/4, $0xbf597fc7
DATA shaniK256<>+224(SB)/4, $0xc6e00bf3
DATA shaniK256<>+228(SB)/4, $0xd5a79147
DATA shaniK256<>+232(SB)/4, $0x06ca6351
DATA shaniK256<>+236(SB)/4, $0x14292967
DATA shaniK256<>+240(SB)/4, $0xc6e00bf3
DATA shaniK256<>+244(SB)/4, $0xd5a79147
DATA shaniK256<>+248(SB)/4, $0x06ca6351
DATA shaniK256<>+252(SB)/4, $0x14292967
DATA shaniK256<>+256(SB)/4, $0x27b70a85
DATA shaniK256<>+260(SB)/4, $0x2e1b2138
DATA shaniK256<>+264(SB)/4, $0x4d2c6dfc
DATA shaniK256<>+268(SB)/4, $0x53380d13
DATA shaniK256<>+272(SB)/4, $0x27b70a85
DATA shaniK256<>+276(SB)/4, $0x2e1b2138
DATA shaniK256<>+280(SB)/4, $0x4d2c6dfc
DATA shaniK256<>+284(SB)/4, $0x53380d13
DATA shaniK256<>+288(SB)/4, $0x650a7354
DATA shaniK256<>+292(SB)/4, $0x766a0abb
DATA shaniK256<>+296(SB)/4, $0x81c2c92e
DATA shaniK256<>+300(SB)/4, $0x92722c85
DATA shaniK256<>+304(SB)/4, $0x650a7354
DATA shaniK256<>+308(SB)/4, $0x766a0abb
DATA shaniK256<>+312(SB)/4, $0x81c2c92e
DATA shaniK256<>+316(SB)/4, $0x92722c85
DATA shaniK256<>+320(SB)/4, $0xa2bfe8a1
DATA shaniK256<>+324(SB)/4, $0xa81a664b
DATA shaniK256<>+328(SB)/4, $0xc24b8b70
DATA shaniK256<>+332(SB)/4, $0xc76c51a3
DATA shaniK256<>+336(SB)/4, $0xa2bfe8a1
DATA shaniK256<>+340(SB)/4, $0xa81a664b
DATA shaniK256<>+344(SB)/4, $0xc24b8b70
DATA shaniK256<>+348(SB)/4, $0xc76c51a3
DATA shaniK256<>+352(SB)/4, $0xd192e819
DATA shaniK256<>+356(SB)/4, $0xd6990624
DATA shaniK256<>+360(SB)/4, $0xf40e3585
DATA shaniK256<>+364(SB)/4, $0x106aa070
DATA shaniK256<>+368(SB)/4, $0xd192e819
DATA shaniK256<>+372(SB)/4, $0xd6990624
DATA shaniK256<>+376(SB)/4, $0xf40e3585
DATA shaniK256<>+380(SB)/4, $0x106aa070
DATA shaniK256<>+384(SB)/4, $0x19a4c116
DATA shaniK256<>+388(SB)/4, $0x1e376c08
DATA shaniK256<>+392(SB)/4, $0x2748774c
DATA shaniK256<>+396(SB)/4, $0x34b0bcb5
DATA shaniK256<>+400(SB)/4, $0x19a4c116
DATA shaniK256<>+404(SB)/4, $0x1e376c08
DATA shaniK256<>+408(SB)/4, $0x2748774c
DATA shaniK256<>+412(SB)/4, $0x34b0bcb5
DATA shaniK256<>+416(SB)/4, $0x391c0cb3
DATA shaniK256<>+420(SB)/4, $0x4ed8aa4a
DATA shaniK256<>+424(SB)/4, $0x5b9cca4f
DATA shaniK256<>+428(SB)/4, $0x682e6ff3
DATA shaniK256<>+432(SB)/4, $0x391c0cb3
DATA shaniK256<>+436(SB)/4, $0x4ed8aa4a
DATA shaniK256<>+440(SB)/4, $0x5b9cca4f
DATA shaniK256<>+444(SB)/4, $0x682e6ff3
DATA shaniK256<>+448(SB)/4, $0x748f82ee
DATA shaniK256<>+452(SB)/4, $0x78a5636f
DATA shaniK256<>+456(SB)/4, $0x84c87814
DATA shaniK256<>+460(SB)/4, $0x8cc70208
DATA shaniK256<>+464(SB)/4, $0x748f82ee
DATA shaniK256<>+468(SB)/4, $0x78a5636f
DATA shaniK256<>+472(SB)/4, $0x84c87814
DATA shaniK256<>+476(SB)/4, $0x8cc70208
DATA shaniK256<>+480(SB)/4, $0x90befffa
DATA shaniK256<>+484(SB)/4, $0xa4506ceb
DATA shaniK256<>+488(SB)/4, $0xbef9a3f7
DATA shaniK256<>+492(SB)/4, $0xc67178f2
DATA shaniK256<>+496(SB)/4, $0x90befffa
DATA shaniK256<>+500(SB)/4, $0xa4506ceb
DATA shaniK256<>+504(SB)/4, $0xbef9a3f7
DATA shaniK256<>+508(SB)/4, $0xc67178f2
GLOBL shaniK256<>(SB), RODATA|NOPTR, $512

// func blockSHANI(dig *[8]uint32, p []byte)
// Requires: AVX, SHA, SSE2, SSE4.1, SSSE3
TEXT ·blockSHANI(SB), $0-32
	MOVQ    dig+0(FP), DI
	MOVQ    p_base+8(FP), SI
	MOVQ    p_len+16(FP), DX
	SHRQ    $0x06, DX
	SHLQ    $0x06, DX
	CMPQ    DX, $0x00
	JEQ     done
	ADDQ    SI, DX
	VMOVDQU (DI), X1
	VMOVDQU 16(DI), X2
	PSHUFD  $0xb1, X1, X1
	PSHUFD  $0x1b, X2, X2
	VMOVDQA X1, X7
	PALIGNR $0x08, X2, X1
	PBLENDW $0xf0, X7, X2
	VMOVDQA shaniFlipMask<>+0(SB), X8
	LEAQ    shaniK256<>+0(SB), AX

roundLoop:
	// save hash values for addition after rounds
	VMOVDQA X1, X9
	VMOVDQA X2, X10

	// do rounds 0-59
	VMOVDQU     (SI), X0
	PSHUFB      X8, X0
	VMOVDQA     X0, X3
	PADDD       (AX), X0
	SHA256RNDS2 X0, X1, X2
	PSHUFD      $0x0e, X0, X0
	SHA256RNDS2 X0, X2, X1
	VMOVDQU     16(SI), X0
	PSHUFB      X8, X0
	VMOVDQA     X0, X4
	PADDD       32(AX), X0
	SHA256RNDS2 X0, X1, X2
	PSHUFD      $0x0e, X0, X0
	SHA256RNDS2 X0, X2, X1
	SHA256MSG1  X4, X3
	VMOVDQU     32(SI), X0
	PSHUFB      X8, X0
	VMOVDQA     X0, X5
	PADDD       64(AX), X0
	SHA256RNDS2 X0, X1, X2
	PSHUFD      $0x0e, X0, X0
	SHA256RNDS2 X0, X2, X1
	SHA256MSG1  X5, X4
	VMOVDQU     48(SI), X0
	PSHUFB      X8, X0
	VMOVDQA     X0, X6
	PADDD       96(AX), X0
	SHA256RNDS2 X0, X1, X2
	VMOVDQA     X6, X7
	PALIGNR     $0x04, X5, X7
	PADDD       X7, X3
	SHA256MSG2  X6, X3
	PSHUFD      $0x0e, X0, X0
	SHA256RNDS2 X0, X2, X1
	SHA256MSG1  X6, X5
	VMOVDQA     X3, X0
	PADDD       128(AX), X0
	SHA256RNDS2 X0, X1, X2
	VMOVDQA     X3, X7
	PALIGNR     $0x04, X6, X7
	PADDD       X7, X4
	SHA256MSG2  X3, X4
	PSHUFD      $0x0e, X0, X0
	SHA256RNDS2 X0, X2, X1
	SHA256MSG1  X3, X6
	VMOVDQA     X4, X0
	PADDD       160(AX), X0
	SHA256RNDS2 X0, X1, X2
	VMOVDQA     X4, X7
	PALIGNR     $0x04, X3, X7
	PADDD       X7, X5
	SHA256MSG2  X4, X5
	PSHUFD      $0x0e, X0, X0
	SHA256RNDS2 X0, X2, X1
	SHA256MSG1  X4, X3
	VMOVDQA     X5, X0
	PADDD       192(AX), X0
	SHA256RNDS2 X0, X1, X2
	VMOVDQA     X5, X7
	PALIGNR     $0x04, X4, X7
	PADDD       X7, X6
	SHA256MSG2  X5, X6
	PSHUFD      $0x0e, X0, X0
	SHA256RNDS2 X0, X2, X1
	SHA256MSG1  X5, X4
	VMOVDQA     X6, X0
	PADDD       224(AX), X0
	SHA256RNDS2 X0, X1, X2
	VMOVDQA     X6, X7
	PALIGNR     $0x04, X5, X7
	PADDD       X7, X3
	SHA256MSG2  X6, X3
	PSHUFD      $0x0e, X0, X0
	SHA256RNDS2 X0, X2, X1
	SHA256MSG1  X6, X5
	VMOVDQA     X3, X0
	PADDD       256(AX), X0
	SHA256RNDS2 X0, X1, X2
	VMOVDQA     X3, X7
	PALIGNR     $0x04, X6, X7
	PADDD       X7, X4
	SHA256MSG2  X3, X4
	PSHUFD      $0x0e, X0, X0
	SHA256RNDS2 X0, X2, X1
	SHA256MSG1  X3, X6
	VMOVDQA     X4, X0
	PADDD       288(AX), X0
	SHA256RNDS2 X0, X1, X2
	VMOVDQA     X4, X7
	PALIGNR     $0x04, X3, X7
	PADDD       X7, X5
	SHA256MSG2  X4, X5
	PSHUFD      $0x0e, X0, X0
	SHA256RNDS2 X0, X2, X1
	SHA256MSG1  X4, X3
	VMOVDQA     X5, X0
	PADDD       320(AX), X0
	SHA256RNDS2 X0, X1, X2
	VMOVDQA     X5, X7
	PALIGNR     $0x04, X4, X7
	PADDD       X7, X6
	SHA256MSG2  X5, X6
	PSHUFD      $0x0e, X0, X0
	SHA256RNDS2 X0, X2, X1
	SHA256MSG1  X5, X4
	VMOVDQA     X6, X0
	PADDD       352(AX), X0
	SHA256RNDS2 X0, X1, X2
	VMOVDQA     X6, X7
	PALIGNR     $0x04, X5, X7
	PADDD       X7, X3
	SHA256MSG2  X6, X3
	PSHUFD      $0x0e, X0, X0
	SHA256RNDS2 X0, X2, X1
	SHA256MSG1  X6, X5
	VMOVDQA     X3, X0
	PADDD       384(AX), X0
	SHA256RNDS2 X0, X1, X2
	VMOVDQA     X3, X7
	PALIGNR     $0x04, X6, X7
	PADDD       X7, X4
	SHA256MSG2  X3, X4
	PSHUFD      $0x0e, X0, X0
	SHA256RNDS2 X0, X2, X1
	SHA256MSG1  X3, X6
	VMOVDQA     X4, X0
	PADDD       416(AX), X0
	SHA256RNDS2 X0, X1, X2
	VMOVDQA     X4, X7
	PALIGNR     $0x04, X3, X7
	PADDD       X7, X5
	SHA256MSG2  X4, X5
	PSHUFD      $0x0e, X0, X0
	SHA256RNDS2 X0, X2, X1
	VMOVDQA     X5, X0
	PADDD       448(AX), X0
	SHA256RNDS2 X0, X1, X2
	VMOVDQA     X5, X7
	PALIGNR     $0x04, X4, X7
	PADDD       X7, X6
	SHA256MSG2  X5, X6
	PSHUFD      $0x0e, X0, X0
	SHA256RNDS2 X0, X2, X1

	// do rounds 60-63
	VMOVDQA     X6, X0
	PADDD       480(AX), X0
	SHA256RNDS2 X0, X1, X2
	PSHUFD      $0x0e, X0, X0
	SHA256RNDS2 X0, X2, X1

	// add current hash values with previously saved
	PADDD X9, X1
	PADDD X10, X2

	// advance data pointer; loop until buffer empty
	ADDQ $0x40, SI
	CMPQ DX, SI
	JNE  roundLoop

	// write hash values back in the correct order
	PSHUFD  $0x1b, X1, X1
	PSHUFD  $0xb1, X2, X2
	VMOVDQA X1, X7
	PBLENDW $0xf0, X2, X1
	PALIGNR $0x08, X7, X2
	VMOVDQU X1, (DI)
	VMOVDQU X2, 16(DI)

done:
	RET
