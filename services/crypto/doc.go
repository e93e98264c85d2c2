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
// flight, throttled, resumed after a restart, its progress on the debug
// endpoint (percent, rate, where this run resumed). The journal and record
// go in one of two places. Without a metadata bdev, in the base's tail,
// and the stage is that much smaller than its base:
//
//	[0, data)                 the stage's blocks
//	[data, data+region)       journal: the plaintext of the region in flight
//	[blocks-2, blocks)        two copies of the conversion record (record.go)
//
// With one (Config.Metadata, YAML's and the RPCs' metadata), on it, and the
// base is all data:
//
//	base     [0, blocks)           the stage's blocks, all of them
//	metadata [0, 2)                two copies of the conversion record
//	metadata [2, 2+region)         journal
//
// # Online encryption of a live bdev
//
// A bdev already exported (a namespace, a LUN) cannot change size or Info
// (bdev B10), so a crypto stage goes under it (cmd/sluice's
// sluice_stage_insert) only with a metadata bdev: nothing shrinks, and the
// stage describes itself as the back end it goes over (C8). The caller
// names a metadata bdev no conversion has used (ConvertFresh refuses one
// holding a record: resuming another volume's record would call plaintext
// ciphertext). Afterwards the stage is an ordinary topology stage, base
// <name>.base, metadata and convert kept; a restart from that description
// (save_config writes it) finds the record and resumes at the watermark.
// The metadata bdev stays part of the stage for good: a topology that drops
// it mid-conversion would read plaintext as ciphertext, and one that drops
// it after would lose C8's zero blocks.
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
//	    saying so are written. Each of those writes is flushed (when its
//	    bdev takes flushes) before the next step counts on it, so the order
//	    holds on the media across a power loss, and across two bdevs.
//	C7. Foreground IO to the region being converted waits for its lock (one
//	    region, ConvertRegionSize); everything else runs as usual.
//	C8. A shaped stage (a metadata bdev) has its base's size and Info, less
//	    the IO types it cannot pass (a native compare would see ciphertext):
//	    no transfer limit of its own (a write larger than a pooled buffer
//	    goes down in pieces, one child sent again per piece) and no
//	    boundary (an IO across the watermark is cut per block, C5). Unmap
//	    and write-zeroes pass down as they are, and a block of zeros on the
//	    base reads as zeros rather than being decrypted, so the base's
//	    UnmapZeroes still holds. The price: which blocks are unmapped or
//	    zeroed shows on the base (as with dm-crypt's allow_discards; data
//	    written as zeros is encrypted like any other), and a block whose
//	    ciphertext happens to be all zeros would read as zeros, a chance of
//	    2^-4096 per 512-byte block.
//	C9. Once the conversion is done no plaintext stays on the base or the
//	    metadata bdev: the last region's step zeroes the journal, and a
//	    restart that finds the record done zeroes it if a crash came first.
//
// Imports: services/bdev, services/stage, reactors, golang.org/x/crypto.
package crypto
