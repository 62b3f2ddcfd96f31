//! The fault-record frame decoder (`mobius_shared::record::decode_frame`)
//! and the host's sink behind it (`mobius::record::sink::Sink`, which
//! streams accepted records into a data file) on arbitrary bytes: nothing
//! panics, what the decoder accepts re-encodes to the same bytes, and the
//! data file the sink writes reads back with exactly the accepted records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mobius::record::file::{DataFile, Header, Writer};
use mobius::record::sink::Sink;
use mobius_shared::record::{decode_frame, MAX_FRAME_LEN, RECORD_LEN};

fuzz_target!(|data: &[u8]| {
    let accepted = match decode_frame(data) {
        Ok(f) => {
            assert!(data.len() <= MAX_FRAME_LEN);
            let mut again = f.header.to_bytes().to_vec();
            for r in f.records() {
                again.extend_from_slice(&r.to_bytes());
            }
            assert_eq!(again, data);
            f.header.count as usize
        }
        Err(_) => 0,
    };
    // The same bytes through the host: twice (a replayed frame is a
    // sequence gap, not a crash), then the file reads back.
    let dir = std::env::temp_dir().join(format!("mobius-fuzz-record-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("fuzz.data");
    let file = std::fs::File::create(&path).expect("temp file");
    let header = Header {
        sample: 1,
        ..Header::default()
    };
    let mut sink = Sink::new(Writer::new(file, &header).expect("header"));
    sink.push(data);
    sink.push(data);
    assert_eq!(sink.records() as usize, 2 * accepted);
    sink.finish(0, Vec::new()).expect("trailer");
    let back = DataFile::open(&path).expect("the sink's file reads back");
    assert_eq!(back.trailer.records as usize, 2 * accepted);
    let n = back.records().expect("records").map(|r| r.expect("good")).count();
    assert_eq!(n, 2 * accepted);
    let _ = RECORD_LEN;
});
