//! The memory allocator of plugin components: free lists per size class in front of the
//! standard allocator.
//!
//! A translation allocates many small, short-lived values per record (strings of the input,
//! boxed OCSF objects, their JSON). Inside a component the standard allocator is dlmalloc
//! compiled to WebAssembly, whose bookkeeping (bins, coalescing, headers) runs as sandboxed
//! code on every call. Here a small block is taken from, and given back to, a list of free
//! blocks of its size class: a few instructions each way. Blocks are carved from 64 KiB chunks
//! of the standard allocator and never returned to it, which is what a component's memory does
//! anyway (it never shrinks). Large or over-aligned requests go to the standard allocator.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr;

/// Block sizes of the classes, each a multiple of [`ALIGN`], growing by about a half.
const CLASSES: [usize; 17] = [
    8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072,
];

/// Every block's alignment: enough for any type of a 32-bit WebAssembly guest but SIMD vectors.
const ALIGN: usize = 8;

/// The largest request served from the classes.
const MAX_SMALL: usize = CLASSES[CLASSES.len() - 1];

/// What the classes take from the standard allocator at a time.
const CHUNK: usize = 64 << 10;

/// The class of each size in [`ALIGN`] steps: `CLASS_OF[size.div_ceil(ALIGN)]`.
const CLASS_OF: [u8; MAX_SMALL / ALIGN + 1] = {
    let mut table = [0u8; MAX_SMALL / ALIGN + 1];
    let mut steps = 0;
    let mut class = 0;
    while steps < table.len() {
        while CLASSES[class] < steps * ALIGN {
            class += 1;
        }
        table[steps] = class as u8;
        steps += 1;
    }
    table
};

/// The class serving `layout`, if it is small and needs no more than [`ALIGN`].
fn class_of(layout: Layout) -> Option<usize> {
    (layout.size() <= MAX_SMALL && layout.align() <= ALIGN)
        .then(|| usize::from(CLASS_OF[layout.size().div_ceil(ALIGN)]))
}

/// Size-class free lists over `backing`. Not thread-safe: a component has one thread.
pub struct SizeClasses<A> {
    backing: A,
    state: UnsafeCell<State>,
}

struct State {
    /// The first free block of each class; a free block holds the address of the next one.
    free: [*mut u8; CLASSES.len()],
    /// The unused rest of the current chunk.
    next: *mut u8,
    end: *mut u8,
}

impl<A> SizeClasses<A> {
    pub const fn new(backing: A) -> Self {
        SizeClasses {
            backing,
            state: UnsafeCell::new(State {
                free: [ptr::null_mut(); CLASSES.len()],
                next: ptr::null_mut(),
                end: ptr::null_mut(),
            }),
        }
    }
}

// SAFETY: a `wasm32-unknown-unknown` component without the `atomics` feature has exactly one
// thread, so the state is never touched concurrently.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl<A: Sync> Sync for SizeClasses<A> {}

impl<A: GlobalAlloc> SizeClasses<A> {
    /// A block of `class`, from its free list or the current chunk.
    ///
    /// # Safety
    /// Only one call into this allocator runs at a time.
    unsafe fn take(&self, class: usize) -> *mut u8 {
        // SAFETY: no other call runs (the caller's contract), so this is the only reference.
        let state = unsafe { &mut *self.state.get() };
        let head = state.free[class];
        if !head.is_null() {
            // SAFETY: a free block of this class starts with the address of the next one.
            state.free[class] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        let size = CLASSES[class];
        if (state.end as usize) - (state.next as usize) < size {
            // SAFETY: CHUNK and ALIGN make a valid, non-zero layout.
            let chunk = unsafe {
                self.backing
                    .alloc(Layout::from_size_align_unchecked(CHUNK, ALIGN))
            };
            if chunk.is_null() {
                return chunk;
            }
            state.next = chunk;
            // SAFETY: the chunk is CHUNK bytes long.
            state.end = unsafe { chunk.add(CHUNK) };
        }
        let block = state.next;
        // SAFETY: at least `size` bytes are left in the chunk (checked above).
        state.next = unsafe { block.add(size) };
        block
    }

    /// Puts a block of `class` on its free list.
    ///
    /// # Safety
    /// `block` came from [`Self::take`] for `class` and is no longer used; only one call into
    /// this allocator runs at a time.
    unsafe fn give(&self, class: usize, block: *mut u8) {
        // SAFETY: no other call runs (the caller's contract).
        let state = unsafe { &mut *self.state.get() };
        // SAFETY: every block is at least 8 bytes and 8-aligned, room for an address.
        unsafe { block.cast::<*mut u8>().write(state.free[class]) };
        state.free[class] = block;
    }
}

// SAFETY: blocks of a class are `CLASSES[class]` bytes, 8-aligned (chunks are 8-aligned and
// every class size is a multiple of 8), and handed out once until given back; everything else
// is the backing allocator's.
unsafe impl<A: GlobalAlloc> GlobalAlloc for SizeClasses<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            // SAFETY: GlobalAlloc's callers do not call concurrently on this single thread.
            Some(class) => unsafe { self.take(class) },
            // SAFETY: forwarded with the caller's layout.
            None => unsafe { self.backing.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class_of(layout) {
            // SAFETY: the same layout was served by this class.
            Some(class) => unsafe { self.give(class, block) },
            // SAFETY: the same layout was served by the backing allocator.
            None => unsafe { self.backing.dealloc(block, layout) },
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: GlobalAlloc::realloc's contract: new_size, rounded to the alignment, fits.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new_layout)) {
            (Some(old), Some(new)) if old == new => block,
            // SAFETY: both sizes are the backing allocator's, with the caller's layout.
            (None, None) => unsafe { self.backing.realloc(block, layout, new_size) },
            _ => {
                // SAFETY: a valid layout (above); the old block is valid for its size.
                unsafe {
                    let moved = self.alloc(new_layout);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                    moved
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    #[test]
    fn every_small_size_gets_the_smallest_class_that_holds_it() {
        for size in 0..=MAX_SMALL {
            let class = class_of(Layout::from_size_align(size, 1).unwrap()).unwrap();
            assert!(CLASSES[class] >= size, "size {size}");
            assert!(class == 0 || CLASSES[class - 1] < size, "size {size}");
        }
        assert_eq!(
            class_of(Layout::from_size_align(MAX_SMALL + 1, 1).unwrap()),
            None
        );
        assert_eq!(class_of(Layout::from_size_align(16, 16).unwrap()), None);
    }

    #[test]
    fn blocks_are_aligned_disjoint_and_reused_and_keep_their_bytes_when_moved() {
        let heap = SizeClasses::new(System);
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        // A deterministic mix of sizes across the classes and above them, with frees between.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..20_000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let size = 1 + (seed % 5_000) as usize;
            if seed.is_multiple_of(3) && !live.is_empty() {
                let (block, layout, fill) = live.swap_remove((seed as usize / 3) % live.len());
                // SAFETY: the block is live with this layout and was filled with `fill`.
                unsafe {
                    assert!(std::slice::from_raw_parts(block, layout.size())
                        .iter()
                        .all(|&b| b == fill));
                    heap.dealloc(block, layout);
                }
                continue;
            }
            let layout = Layout::from_size_align(size, 1 << (seed % 4)).unwrap();
            let fill = round as u8;
            // SAFETY: a valid, non-zero layout; the block is written within its size.
            unsafe {
                let mut block = heap.alloc(layout);
                assert!(!block.is_null());
                assert_eq!(block as usize % layout.align(), 0);
                ptr::write_bytes(block, fill, layout.size());
                let mut layout = layout;
                if seed.is_multiple_of(5) {
                    let grown = layout.size() * 2 + 1;
                    block = heap.realloc(block, layout, grown);
                    assert!(std::slice::from_raw_parts(block, layout.size())
                        .iter()
                        .all(|&b| b == fill));
                    layout = Layout::from_size_align(grown, layout.align()).unwrap();
                    ptr::write_bytes(block, fill, layout.size());
                }
                live.push((block, layout, fill));
            }
        }
        // No two live blocks overlap.
        let mut spans: Vec<(usize, usize)> = live
            .iter()
            .map(|(b, l, _)| (*b as usize, *b as usize + l.size()))
            .collect();
        spans.sort_unstable();
        assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0));
        // A freed block is the next one its class hands out.
        let layout = Layout::from_size_align(40, 8).unwrap();
        // SAFETY: valid layouts; blocks are freed once.
        unsafe {
            let a = heap.alloc(layout);
            heap.dealloc(a, layout);
            assert_eq!(heap.alloc(layout), a);
            heap.dealloc(a, layout);
            for (block, layout, _) in live {
                heap.dealloc(block, layout);
            }
        }
    }
}
