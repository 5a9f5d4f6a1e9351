// Package frame is the on-disk record framing of the audit log.
//
// A frame is
//
//	u32   payload length L, big endian
//	u64   sequence number (record index), big endian
//	u32   CRC-32C of the 12 bytes above
//	L     payload
//	u32   CRC-32C of the payload
//
// The header checksum lets a reader tell a torn tail (the file ends inside a
// frame whose header is intact) from a modified length field (the header
// checksum fails). Checksums catch accidents and single-byte edits; they
// are not a defence against a deliberate forger, which is the Merkle tree's
// and the signed checkpoints' job.
package frame

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// HeaderSize and TrailerSize are the fixed parts of a frame.
const (
	HeaderSize  = 16
	TrailerSize = 4
	Overhead    = HeaderSize + TrailerSize
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors returned by [Next].
var (
	// ErrShort means the data ends inside a frame whose header, if
	// complete, is intact: the shape of a torn write.
	ErrShort = errors.New("frame: short frame")
	// ErrHeader means the header checksum failed or the length is over
	// the limit.
	ErrHeader = errors.New("frame: bad header")
	// ErrPayload means the payload checksum failed.
	ErrPayload = errors.New("frame: bad payload checksum")
)

// Append appends the frame for (seq, payload) to dst.
func Append(dst []byte, seq uint64, payload []byte) []byte {
	var h [HeaderSize]byte
	binary.BigEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint64(h[4:12], seq)
	binary.BigEndian.PutUint32(h[12:16], crc32.Checksum(h[:12], castagnoli))
	dst = append(dst, h[:]...)
	dst = append(dst, payload...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
}

// Next parses the frame at the start of b. It returns the sequence number,
// the payload (aliasing b) and the frame's total size. maxLen bounds the
// payload length. On error n is 0.
func Next(b []byte, maxLen int) (seq uint64, payload []byte, n int, err error) {
	if len(b) < HeaderSize {
		return 0, nil, 0, ErrShort
	}
	if binary.BigEndian.Uint32(b[12:16]) != crc32.Checksum(b[:12], castagnoli) {
		return 0, nil, 0, ErrHeader
	}
	l := binary.BigEndian.Uint32(b[0:4])
	if uint64(l) > uint64(maxLen) {
		return 0, nil, 0, ErrHeader
	}
	seq = binary.BigEndian.Uint64(b[4:12])
	end := HeaderSize + int(l) + TrailerSize
	if len(b) < end {
		return 0, nil, 0, ErrShort
	}
	payload = b[HeaderSize : HeaderSize+int(l)]
	if binary.BigEndian.Uint32(b[HeaderSize+int(l):end]) != crc32.Checksum(payload, castagnoli) {
		return 0, nil, 0, ErrPayload
	}
	return seq, payload, end, nil
}

// Header parses the frame at the start of b like [Next], but does not
// check the payload checksum: callers check it with [PayloadOK], possibly
// in parallel. On error n is 0.
func Header(b []byte, maxLen int) (seq uint64, payload []byte, crc uint32, n int, err error) {
	if len(b) < HeaderSize {
		return 0, nil, 0, 0, ErrShort
	}
	if binary.BigEndian.Uint32(b[12:16]) != crc32.Checksum(b[:12], castagnoli) {
		return 0, nil, 0, 0, ErrHeader
	}
	l := binary.BigEndian.Uint32(b[0:4])
	if uint64(l) > uint64(maxLen) {
		return 0, nil, 0, 0, ErrHeader
	}
	end := HeaderSize + int(l) + TrailerSize
	if len(b) < end {
		return 0, nil, 0, 0, ErrShort
	}
	return binary.BigEndian.Uint64(b[4:12]), b[HeaderSize : HeaderSize+int(l)], binary.BigEndian.Uint32(b[HeaderSize+int(l) : end]), end, nil
}

// PayloadOK reports whether payload matches the checksum from [Header].
func PayloadOK(payload []byte, crc uint32) bool {
	return crc32.Checksum(payload, castagnoli) == crc
}

// ErrBudget is returned by [Find] when the data holds so many plausible
// frame headers that checking their payloads would cost more than the
// budget allowed.
var ErrBudget = errors.New("frame: resynchronisation budget exhausted")

// Find looks for an intact frame in b, trying every byte offset: the first
// complete frame whose header and payload checksums hold and whose
// sequence number is at least minSeq. It returns its offset and sequence
// number, or off -1 when there is none.
//
// Find is for after a bad frame, whose length field cannot be trusted. Its
// work is bounded: one 12-byte checksum per offset, plus the payloads of
// candidate frames, at most budget bytes of them in total; beyond that it
// gives up with [ErrBudget].
func Find(b []byte, maxLen int, minSeq uint64, budget int) (off int, seq uint64, err error) {
	for p := 0; p+Overhead <= len(b); p++ {
		h := b[p:]
		l := binary.BigEndian.Uint32(h[0:4])
		if uint64(l) > uint64(maxLen) || uint64(l) > uint64(len(h)-Overhead) {
			continue
		}
		s := binary.BigEndian.Uint64(h[4:12])
		if l == 0 && s == 0 && binary.BigEndian.Uint32(h[12:16]) == 0 {
			continue // zero fill: never a valid header (its checksum is not 0)
		}
		if s < minSeq || binary.BigEndian.Uint32(h[12:16]) != crc32.Checksum(h[:12], castagnoli) {
			continue
		}
		if budget -= int(l); budget < 0 {
			return -1, 0, ErrBudget
		}
		end := HeaderSize + int(l)
		if binary.BigEndian.Uint32(h[end:end+TrailerSize]) == crc32.Checksum(h[HeaderSize:end], castagnoli) {
			return p, s, nil
		}
	}
	return -1, 0, nil
}
