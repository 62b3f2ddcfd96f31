//! The guest's program ELF parser (`mobius_guest::proc::elf::parse`) on
//! arbitrary bytes: it never panics, and everything its documentation says
//! a loader may trust in an `ElfImage` holds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mobius_guest::proc::elf::{parse, MAX_ALIGN, MAX_PHNUM, MAX_SPAN, PAGE_SIZE, USER_END};

fuzz_target!(|data: &[u8]| {
    let Ok(img) = parse(data) else {
        return;
    };
    assert_eq!(img.phent, 56);
    assert!(img.phnum <= MAX_PHNUM);
    assert!(img.align.is_power_of_two() && (PAGE_SIZE..=MAX_ALIGN).contains(&img.align));
    assert!(!img.segments.is_empty());
    let file_len = data.len() as u64;
    for s in &img.segments {
        assert!(s.mem_size > 0 && s.file_size <= s.mem_size, "{s:?}");
        assert!(
            s.file_offset
                .checked_add(s.file_size)
                .is_some_and(|end| end <= file_len),
            "{s:?} outside the file"
        );
        assert!(
            s.vaddr
                .checked_add(s.mem_size)
                .is_some_and(|end| end <= USER_END),
            "{s:?} above user space"
        );
        assert!(s.page_start() <= s.vaddr && s.end() <= s.page_end());
    }
    for pair in img.segments.windows(2) {
        assert!(
            pair[0].end() <= pair[1].vaddr,
            "{pair:?} overlap or unordered"
        );
    }
    assert!(img
        .segments
        .iter()
        .any(|s| s.execute && (s.vaddr..s.end()).contains(&img.entry)));
    let (lo, hi) = img.span();
    assert!(lo <= hi && hi - lo <= MAX_SPAN);
    let shared = img.shared_pages();
    for pair in shared.windows(2) {
        assert!(pair[0] < pair[1]);
    }
    for page in shared {
        assert_eq!(page % PAGE_SIZE, 0);
        let touching = img
            .segments
            .iter()
            .filter(|s| s.page_start() <= page && page < s.page_end())
            .count();
        assert!(touching >= 2, "page {page:#x} shared by {touching}");
    }
});
