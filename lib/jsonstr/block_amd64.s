//go:build amd64 && !purego

#include "textflag.h"

DATA quotes<>+0(SB)/8, $0x2222222222222222
DATA quotes<>+8(SB)/8, $0x2222222222222222
DATA quotes<>+16(SB)/8, $0x2222222222222222
DATA quotes<>+24(SB)/8, $0x2222222222222222
GLOBL quotes<>(SB), RODATA|NOPTR, $32

DATA backslashes<>+0(SB)/8, $0x5c5c5c5c5c5c5c5c
DATA backslashes<>+8(SB)/8, $0x5c5c5c5c5c5c5c5c
DATA backslashes<>+16(SB)/8, $0x5c5c5c5c5c5c5c5c
DATA backslashes<>+24(SB)/8, $0x5c5c5c5c5c5c5c5c
GLOBL backslashes<>(SB), RODATA|NOPTR, $32

DATA controls<>+0(SB)/8, $0x1f1f1f1f1f1f1f1f
DATA controls<>+8(SB)/8, $0x1f1f1f1f1f1f1f1f
DATA controls<>+16(SB)/8, $0x1f1f1f1f1f1f1f1f
DATA controls<>+24(SB)/8, $0x1f1f1f1f1f1f1f1f
GLOBL controls<>(SB), RODATA|NOPTR, $32

DATA spaces<>+0(SB)/8, $0x2020202020202020
DATA spaces<>+8(SB)/8, $0x2020202020202020
DATA spaces<>+16(SB)/8, $0x2020202020202020
DATA spaces<>+24(SB)/8, $0x2020202020202020
GLOBL spaces<>(SB), RODATA|NOPTR, $32

// func appendBlocks(out []byte, j int, b []byte, i int) (ni, nj int)
//
// Registers: SI, CX: the input and where in it (i); DI, DX: the output
// and where in it (j); R9: the last i a block may start at; R8: the last j
// a block may start at; R10: the escapes table. The frame: the tail,
// padded with spaces, at 0(SP) to 95(SP); its length at 96(SP).
TEXT ·appendBlocks(SB), NOSPLIT, $104-80
	MOVQ out_base+0(FP), DI
	MOVQ out_len+8(FP), R8
	MOVQ j+24(FP), DX
	MOVQ b_base+32(FP), SI
	MOVQ b_len+40(FP), R9
	MOVQ i+56(FP), CX
	SUBQ $224, R8 // room for 32 escapes of 6 bytes and a 32-byte store
	SUBQ $64, R9  // a block and the 32 bytes its stores of the rest read
	VMOVDQU quotes<>(SB), Y13
	VMOVDQU backslashes<>(SB), Y14
	VMOVDQU controls<>(SB), Y15
	LEAQ ·escapes(SB), R10

loop:
	CMPQ CX, R9
	JGT  end
	CMPQ DX, R8
	JGT  ret

	// The block, stored as it is, and the mask of its bytes to escape:
	// '"', '\' and those below 0x20 (min(x, 0x1f) == x).
	VMOVDQU   (SI)(CX*1), Y0
	VMOVDQU   Y0, (DI)(DX*1)
	VPCMPEQB  Y0, Y13, Y1
	VPCMPEQB  Y0, Y14, Y2
	VPMINUB   Y0, Y15, Y3
	VPCMPEQB  Y0, Y3, Y3
	VPOR      Y1, Y2, Y1
	VPOR      Y1, Y3, Y1
	VPMOVMSKB Y1, AX
	TESTL     AX, AX
	JNZ       escape
	ADDQ      $32, CX
	ADDQ      $32, DX
	JMP       loop

escape:
	LEAQ (DI)(DX*1), R11 // the output at the block, plus what escapes added
	LEAQ (SI)(CX*1), R12 // the input at the block

next:
	// Each flagged byte, lowest first: its escape (8 bytes stored, its
	// length l in the top byte) where it was, then the 32 input bytes
	// after it right after the escape; the later stores overwrite what
	// lands past the escape and past the block.
	BSFL    AX, BX            // t, the byte's index in the block
	MOVBQZX (R12)(BX*1), R14
	MOVQ    (R10)(R14*8), R14
	MOVQ    R14, (R11)(BX*1)
	SHRQ    $56, R14
	VMOVDQU 1(R12)(BX*1), Y1
	LEAQ    -1(R11)(R14*1), R11 // what this escape adds: l-1
	VMOVDQU Y1, 1(R11)(BX*1)
	LEAL    -1(AX), R13
	ANDL    R13, AX
	JNZ     next

	SUBQ DI, R11
	LEAQ 32(R11), DX
	ADDQ $32, CX
	JMP  loop

end:
	// Fewer than 64 bytes left. Back from the tail (the input is the
	// frame): the output of the padding is dropped, the input is done.
	LEAQ 0(SP), R13
	CMPQ SI, R13
	JEQ  tailDone

	// The tail, r = len(b)-i, if it is at least 32 bytes and the output
	// has room for it (6r if every byte is a \u00xx escape, and 32 for the
	// store of the rest after the last one), goes through the same loop
	// from the frame: copied there, padded with spaces (which need no
	// escape) to one or two whole blocks and the 32 bytes after them.
	MOVQ b_len+40(FP), AX
	SUBQ CX, AX
	CMPQ AX, $32
	JLT  ret
	LEAQ (AX)(AX*2), BX
	LEAQ 32(DX)(BX*2), BX
	CMPQ BX, out_len+8(FP)
	JGT  ret
	MOVQ AX, 96(SP)
	LEAQ (SI)(CX*1), R12 // the tail
	LEAQ (R12)(AX*1), SI // the input's end
	VMOVDQU spaces<>(SB), Y0
	VMOVDQU Y0, 32(SP)
	VMOVDQU Y0, 64(SP)
	VMOVDQU (R12), Y1    // its first 32 bytes
	VMOVDQU -32(SI), Y2  // and its last 32, which overlap them
	VMOVDQU Y1, 0(SP)
	VMOVDQU Y2, -32(SP)(AX*1)
	LEAQ 0(SP), SI
	XORQ CX, CX
	MOVQ $0x7fffffffffffffff, R8 // the room is there, checked above
	XORQ R9, R9 // one block for r == 32
	CMPQ AX, $32
	JLE  loop
	MOVQ $32, R9 // two for more
	JMP  loop

tailDone:
	// The loop ran the blocks of the frame up to CX (32 or 64 bytes), r
	// of them the tail: the output of the CX-r spaces is dropped.
	SUBQ CX, DX
	ADDQ 96(SP), DX
	MOVQ b_len+40(FP), CX

ret:
	VZEROUPPER
	MOVQ CX, ni+64(FP)
	MOVQ DX, nj+72(FP)
	RET
