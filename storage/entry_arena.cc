#include "storage/entry_arena.h"

#include <sys/mman.h>

#include <cstddef>
#include <new>

namespace tensorpager::storage {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitizedHeap = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitizedHeap = true;
#else
constexpr bool kSanitizedHeap = false;
#endif
#else
constexpr bool kSanitizedHeap = false;
#endif

// Blocks start this far into their slab, past its header.
constexpr size_t kHeaderBytes = 64;

// kSlabBytes of fresh zeroed memory aligned to kSlabBytes: twice that is
// mapped and the ends around the aligned middle are given back.
char* MapAlignedSlab() {
  constexpr size_t kSpan = 2 * EntryArena::kSlabBytes;
  void* raw = ::mmap(nullptr, kSpan, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  char* const base = static_cast<char*>(raw);
  const uintptr_t mask = EntryArena::kSlabBytes - 1;
  char* const slab = reinterpret_cast<char*>(
      (reinterpret_cast<uintptr_t>(base) + mask) & ~mask);
  if (slab > base) ::munmap(base, static_cast<size_t>(slab - base));
  char* const tail = slab + EntryArena::kSlabBytes;
  if (tail < base + kSpan) {
    ::munmap(tail, static_cast<size_t>(base + kSpan - tail));
  }
  // One huge page per slab where the kernel offers them only on request
  // (transparent_hugepage=madvise, Debian's and Ubuntu's default): at
  // millions of blocks every lookup otherwise pays a TLB miss on top of
  // its cache miss. Slabs fill from the front and are never split, so a
  // huge page costs no memory a full slab would not. Where THP is off this
  // fails harmlessly.
  ::madvise(slab, EntryArena::kSlabBytes, MADV_HUGEPAGE);
  return slab;
}

}  // namespace

struct EntryArena::Slab {
  EntryArena* owner;
  uint32_t block_bytes;
  uint32_t live;
  char* bump;                 // the first block never handed out
  void* free_list = nullptr;  // freed blocks, linked through their first word
  Slab* prev = nullptr;
  Slab* next = nullptr;
  bool listed = false;  // in its class's with_room list

  char* end() { return reinterpret_cast<char*>(this) + kSlabBytes; }
  bool HasRoom() {
    return free_list != nullptr || end() - bump >= ptrdiff_t{block_bytes};
  }
};

EntryArena::~EntryArena() {
  for (SizeClass& c : classes_) {
    // Only slabs with room are listed, and with every block freed every
    // slab has room.
    while (c.with_room != nullptr) {
      Slab* s = c.with_room;
      Unlink(c, s);
      ::munmap(s, kSlabBytes);
    }
  }
}

bool EntryArena::UsesSlabs() { return !kSanitizedHeap; }

bool EntryArena::InSlab(size_t bytes) {
  return !kSanitizedHeap && bytes <= kMaxSlabBlock;
}

void EntryArena::Link(SizeClass& c, Slab* s) {
  s->prev = nullptr;
  s->next = c.with_room;
  if (c.with_room != nullptr) c.with_room->prev = s;
  c.with_room = s;
  s->listed = true;
}

void EntryArena::Unlink(SizeClass& c, Slab* s) {
  if (s->prev != nullptr) {
    s->prev->next = s->next;
  } else {
    c.with_room = s->next;
  }
  if (s->next != nullptr) s->next->prev = s->prev;
  s->prev = s->next = nullptr;
  s->listed = false;
}

EntryArena::Slab* EntryArena::NewSlab(uint32_t block_bytes, SizeClass& c) {
  static_assert(sizeof(Slab) <= kHeaderBytes);
  char* memory = MapAlignedSlab();
  Slab* s = ::new (memory) Slab{this, block_bytes, 0, memory + kHeaderBytes};
  ++c.slabs;
  ++slabs_;
  Link(c, s);
  return s;
}

void* EntryArena::Allocate(size_t bytes) {
  if (!InSlab(bytes)) return ::operator new(bytes);
  // At least a word, for the free list's link.
  const uint32_t block =
      static_cast<uint32_t>(bytes < 8 ? 8 : (bytes + 7) & ~size_t{7});
  std::lock_guard<std::mutex> lock(mu_);
  SizeClass& c = classes_[block / 8];
  Slab* s = c.with_room != nullptr ? c.with_room : NewSlab(block, c);
  void* p;
  if (s->free_list != nullptr) {
    p = s->free_list;
    s->free_list = *static_cast<void**>(p);
  } else {
    p = s->bump;
    s->bump += block;
  }
  ++s->live;
  ++live_;
  if (!s->HasRoom()) Unlink(c, s);
  return p;
}

void EntryArena::Free(void* block, size_t bytes) {
  if (block == nullptr) return;
  if (!InSlab(bytes)) {
    ::operator delete(block);
    return;
  }
  Slab* s = reinterpret_cast<Slab*>(reinterpret_cast<uintptr_t>(block) &
                                    ~uintptr_t{kSlabBytes - 1});
  s->owner->FreeInSlab(s, block);
}

void EntryArena::FreeInSlab(Slab* s, void* block) {
  std::lock_guard<std::mutex> lock(mu_);
  *static_cast<void**>(block) = s->free_list;
  s->free_list = block;
  --s->live;
  --live_;
  SizeClass& c = classes_[s->block_bytes / 8];
  if (!s->listed) Link(c, s);
  // An empty slab goes back to the system unless the class would be left
  // without one: a block made and freed over and over must not map and
  // unmap each time.
  if (s->live == 0 && c.slabs > 1) {
    Unlink(c, s);
    --c.slabs;
    --slabs_;
    ::munmap(s, kSlabBytes);
  }
}

size_t EntryArena::slabs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return slabs_;
}

size_t EntryArena::live_blocks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_;
}

}  // namespace tensorpager::storage
