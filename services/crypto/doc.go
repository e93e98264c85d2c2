// Package crypto is the encryption stage: AES-XTS (IEEE 1619) with 128- or
// 256-bit keys from golang.org/x/crypto/xts, the tweak of each logical block
// its LBA. A write is encrypted into a pooled off-heap buffer and that is
// written; a read is decrypted in place when it completes. Keys are named,
// come from a key file or from accel_crypto_key_create, and are never
// logged or returned by a query (Key prints as its name; only the expanded
// ciphers are kept).
//
// A crypto stage can also encrypt a base that already holds plaintext,
// online (Config.Convert): region by region under a range lock, with a
// watermark (regions below it are encrypted) and a journal of the region in
// flight kept in the base's reserved tail, throttled, resumed after a
// restart, its progress on the debug endpoint. Layout of the base then:
//
//	[0, data)                 the stage's blocks
//	[data, data+region)       journal: the plaintext of the region in flight
//	[blocks-2, blocks)        two copies of the conversion record (record.go)
//
// # Owners
//
//   - Stage and its Key: the control plane; the key's ciphers are read by
//     every reactor (xts.Cipher is safe for concurrent use).
//   - channel: one per reactor, owned by it, with a scratch block for a
//     block whose bytes straddle two iovecs.
//   - converter: the base's owner reactor runs its steps; the control plane
//     recovers before the stage exists and settles the end; the watermark
//     is an atomic every reactor reads.
//
// # Invariants
//
//	C1. The caller's write buffer is never written: a write's ciphertext
//	    goes to a buffer of the reactor's pool, freed when the write ends.
//	C2. A read's data is decrypted in place only after the base completed
//	    it successfully; a failed read is handed up as it came.
//	C3. Block b is encrypted with tweak b (its LBA), the same for every
//	    block size, so what is written reads back anywhere the stage runs.
//	C4. Keys never leave the process: not logged, not in any status or RPC
//	    answer, not kept as bytes (NewKey clears them).
//	C5. While converting, block b is encrypted iff b is below the watermark
//	    (regions [0, w) encrypted); an IO reads the boundary once at submit,
//	    and the boundary cannot move under it, since the watermark moves only
//	    under a LockAll lock of the region, which waits for IO in it.
//	C6. A region is encrypted exactly once: its plaintext is journaled and
//	    the record says so before it is overwritten, and after a crash the
//	    region is encrypted again from the journal, never from what is in
//	    place; the watermark moves on only after the region and the record
//	    saying so are written.
//	C7. Foreground IO to the region being converted waits for its lock (one
//	    region, ConvertRegionSize); everything else runs as usual.
//
// Imports: services/bdev, services/stage, reactors, golang.org/x/crypto.
package crypto
