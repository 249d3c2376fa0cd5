// Memory for the block index's entries (BlockStore::NewEntry): millions of
// blocks of 200 to 500 bytes that live as long as their block is
// registered. From malloc each costs an 8-byte header and rounding to 16
// bytes, and at recovery ten million of them contend for the single malloc
// arena (allocator_tuning.h) with the record scan's thread (record_scan.h):
// a restart with the scan on its own thread took 17 s at 10M blocks with
// entries from malloc, 10 s with entries from here.
//
// Blocks come from 2 MiB slabs of one size class each (multiples of 8
// bytes), mapped on their own and aligned to their size, so a block finds
// its slab by masking its address. Freed blocks are reused first (a slab
// that regains room goes to the front of its class), and a slab that
// empties is unmapped unless it is its class's last. Pages fault in as
// blocks are first used, so a class with a few entries costs a few KiB.
// (Asking for transparent huge pages made a 10M-block recovery slower on
// this VM, 13 s against 10.5.)
//
// Under AddressSanitizer every block comes from operator new, so that a
// use of a freed entry is still caught.
#ifndef TENSORPAGER_STORAGE_ENTRY_ARENA_H_
#define TENSORPAGER_STORAGE_ENTRY_ARENA_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace tensorpager::storage {

class EntryArena {
 public:
  static constexpr size_t kSlabBytes = size_t{2} << 20;
  // Larger blocks come from operator new (entries never are: 521 bytes at
  // most).
  static constexpr size_t kMaxSlabBlock = 1024;

  EntryArena() = default;
  // Unmaps every slab; every block must have been freed.
  ~EntryArena();
  EntryArena(const EntryArena&) = delete;
  EntryArena& operator=(const EntryArena&) = delete;

  // Memory for `bytes` bytes, 8-byte aligned. Throws std::bad_alloc, as
  // operator new does, when the system has no memory to map.
  void* Allocate(size_t bytes);
  // Frees a block of `bytes` (as allocated) from any arena, on any thread;
  // that arena must still exist.
  static void Free(void* block, size_t bytes);

  // False under AddressSanitizer, where every block comes from operator
  // new.
  static bool UsesSlabs();
  // Slabs mapped, and blocks allocated and not freed (tests use them).
  size_t slabs() const;
  size_t live_blocks() const;

 private:
  struct Slab;
  struct SizeClass {
    Slab* with_room = nullptr;  // a list through Slab::prev/next
    size_t slabs = 0;
  };
  static bool InSlab(size_t bytes);
  Slab* NewSlab(uint32_t block_bytes, SizeClass& c);
  void FreeInSlab(Slab* s, void* block);
  static void Link(SizeClass& c, Slab* s);
  static void Unlink(SizeClass& c, Slab* s);

  mutable std::mutex mu_;
  std::array<SizeClass, kMaxSlabBlock / 8 + 1> classes_;
  size_t slabs_ = 0;
  size_t live_ = 0;
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_ENTRY_ARENA_H_
