//! The global allocator: mimalloc, asked for a plain block whenever the
//! alignment wanted is one every block already has.
//!
//! The `mimalloc` crate's allocator passes every request to
//! `mi_malloc_aligned`, even at alignment 1 or 8. In mimalloc 3 that call
//! takes the fast path only for blocks up to 1 KiB whose page has a free
//! block at hand; otherwise it goes to the generic path, and any size
//! that is not a power of two is then *over-allocated* (size + alignment −
//! 1, a bigger size class, then aligned by hand). This receiver's
//! per-request buffers (bodies, stored records, answers) are mostly over
//! 1 KiB, so they paid that detour. Requests aligned to at most 16 bytes
//! — mimalloc's, like any `malloc`'s, guaranteed block alignment — and no
//! larger than the size, go to plain `mi_malloc`, the same rule Rust's own
//! `System` allocator applies to `malloc`; anything else keeps the aligned
//! calls.

use libmimalloc_sys as mi;
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// Every mimalloc block of at least this many bytes is aligned to it
/// (`MI_MAX_ALIGN_SIZE`, `alignof(max_align_t)` on x86-64 and aarch64).
const MIN_ALIGN: usize = 16;

/// mimalloc as the global allocator (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct MiMalloc;

/// True when a plain block of `size` bytes is aligned enough for `align`.
#[inline]
fn plain(align: usize, size: usize) -> bool {
    align <= MIN_ALIGN && align <= size
}

/// A block from `plain_call` when a plain block is aligned enough for
/// `layout`, else from `aligned_call` (the same allocation, aligned).
///
/// # Safety
/// `layout.align()` must be a power of two (as every `Layout`'s is).
#[inline(always)]
unsafe fn allocate(
    layout: Layout,
    plain_call: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned_call: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    // SAFETY: plain FFI calls into mimalloc with a size and a power-of-two
    // alignment.
    unsafe {
        if plain(layout.align(), layout.size()) {
            plain_call(layout.size()).cast()
        } else {
            aligned_call(layout.size(), layout.align()).cast()
        }
    }
}

// SAFETY: every path hands the request to mimalloc, whose blocks meet the
// layout's alignment (plain blocks by the `plain` rule, the rest by the
// aligned calls) and are freed by `mi_free`, which takes blocks from
// either kind of call.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: `layout.align()` is a power of two.
        unsafe { allocate(layout, mi::mi_malloc, mi::mi_malloc_aligned) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe { allocate(layout, mi::mi_zalloc, mi::mi_zalloc_aligned) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator; a plain block is enough
        // for the old layout's alignment at the new size by the same rule.
        unsafe {
            if plain(layout.align(), new_size) {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_meet_every_alignment_asked_for() {
        let a = MiMalloc;
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1usize, 7, 8, 15, 16, 24, 48, 100, 1000, 1500, 5000, 70_000] {
                let size = size.max(align);
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero size; each block is freed once, with its layout.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "alloc {size}/{align}");
                    p.write_bytes(0xa5, size);
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "alloc_zeroed {size}/{align}");
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    let grown = a.realloc(p, layout, size * 3);
                    assert_eq!(grown as usize % align, 0, "realloc {size}/{align}");
                    assert!(
                        std::slice::from_raw_parts(grown, size)
                            .iter()
                            .all(|&b| b == 0xa5)
                    );
                    a.dealloc(grown, Layout::from_size_align(size * 3, align).unwrap());
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
