//! The parsers of what the helper reads from outside (kernel log records, XID lines,
//! scontrol's node line and its drain reason, PCI addresses, snapshot and config JSON)
//! never panic, whatever the input; a record built from parts reads back as those parts.

use ml_healthcheck::config::Config;
use ml_healthcheck::kmsg::parse_record;
use ml_healthcheck::node::parse_show_node;
use ml_healthcheck::reason;
use ml_healthcheck::snapshot::{pci_key, Snapshot};
use ml_healthcheck::xid::{describe, parse_message};
use proptest::prelude::*;

proptest! {
    #[test]
    fn nothing_panics(s in "\\PC*") {
        let _ = parse_record(&s);
        let _ = parse_message(&s);
        let _ = describe(&s);
        let _ = parse_show_node(&s);
        let _ = pci_key(&s);
        let _ = Snapshot::from_json(&s, "x");
        let _ = Config::parse(&s, "x");
        let _ = reason::items(&s);
        let _ = reason::items(&format!("mlhealth: {s}"));
    }

    #[test]
    fn near_misses_do_not_panic(tail in "[ -~]{0,40}", code in "[0-9a-z]{0,4}") {
        let line = format!("4,1,2,-;NVRM: Xid (PCI:{tail}): {code}, {tail}");
        let _ = parse_record(&line).map(|r| parse_message(r.message));
        let _ = parse_show_node(&format!("NodeName=n1 State=IDLE Reason={tail} [{tail}"));
    }

    #[test]
    fn xid_records_read_back(seq in 0u64..u64::MAX, usec in 0u64..u64::MAX, bus in 0u32..256, code in 0u32..1000, text in "[ -~]{0,60}") {
        let line = format!("4,{seq},{usec},-;NVRM: Xid (PCI:0000:{bus:02x}:00): {code}, {text}");
        let r = parse_record(&line).unwrap();
        prop_assert_eq!((r.seq, r.usec), (seq, usec));
        let (pci, c, rest) = parse_message(r.message).unwrap();
        prop_assert_eq!(pci_key(&pci), Some((0, bus, 0)));
        prop_assert_eq!(c, code);
        prop_assert_eq!(rest, text.trim());
    }
}
