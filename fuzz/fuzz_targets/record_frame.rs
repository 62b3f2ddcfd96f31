//! The fault-record frame decoder (`mobius_shared::record::decode_frame`)
//! and the host's sink behind it (`mobius::record::sink::Sink`, which
//! streams accepted records into a data file) on arbitrary bytes: nothing
//! panics, what the decoder accepts re-encodes to the same bytes, and the
//! data file the sink writes (in memory here) has the header it was given,
//! exactly the accepted records, and a trailer that reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mobius::record::file::{Header, Trailer, Writer};
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
    // The same bytes through the host twice (a replayed frame is a
    // sequence gap, not a crash).
    let header = Header {
        sample: 1,
        title: "fuzz".into(),
        ..Header::default()
    };
    let head = header.to_bytes();
    let mut sink = Sink::new(Writer::new(Vec::new(), &header));
    sink.push(data);
    sink.push(data);
    assert_eq!(sink.records() as usize, 2 * accepted);
    let (file, len) = sink.finish(0, Vec::new()).expect("trailer");
    assert_eq!(file.len() as u64, len);
    // The header, with the TSC frequency of the first good frame.
    let mut want = header;
    if let Ok(f) = decode_frame(data) {
        want.tsc_khz = f.header.tsc_khz;
    }
    assert_eq!(Header::parse(&file[..head.len()]).expect("header"), want);
    let t_len = u64::from_le_bytes(file[file.len() - 8..].try_into().expect("8")) as usize;
    let trailer = Trailer::parse(&file[file.len() - t_len..]).expect("trailer");
    assert_eq!(trailer.records as usize, 2 * accepted);
    assert_eq!(file.len() - head.len() - t_len, 2 * accepted * RECORD_LEN);
});
