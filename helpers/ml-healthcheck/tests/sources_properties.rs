//! The parsers of the other sources (SXid and "fallen off the bus" lines, AER files,
//! InfiniBand port files) never panic, whatever the input; a line built from parts reads
//! back as those parts.

use ml_healthcheck::ibports::{rate_gbps, state_number, state_word};
use ml_healthcheck::kevents::{parse_message, What};
use ml_healthcheck::pci_aer::total;
use ml_healthcheck::snapshot::pci_key;
use proptest::prelude::*;

proptest! {
    #[test]
    fn nothing_panics(s in "\\PC*") {
        let _ = parse_message(&s);
        let _ = parse_message(&format!("nvidia-nvswitch{s}"));
        let _ = parse_message(&format!("NVRM: GPU {s}"));
        let _ = total(&s, "ERR_COR");
        let _ = state_number(&s);
        let _ = state_word(&s);
        let _ = rate_gbps(&s);
    }

    #[test]
    fn near_misses_do_not_panic(tail in "[ -~]{0,40}", code in "[0-9a-z]{0,6}") {
        let _ = parse_message(&format!("nvidia-nvswitch{code}: SXid ({tail}): {code}, {tail}"));
        let _ = parse_message(&format!("NVRM: GPU at {tail} has fallen off the bus."));
        let _ = total(&format!("TOTAL_ERR_COR {tail}\nTOTAL_{code} {code}"), "ERR_COR");
    }

    #[test]
    fn sxid_lines_read_back(switch in 0u32..64, bus in 0u32..256, code in 0u32..100_000, fatal in any::<bool>(), text in "[ -~]{0,60}") {
        let word = if fatal { "Fatal" } else { "Non-fatal" };
        let line = format!("nvidia-nvswitch{switch}: SXid (PCI:0000:{bus:02x}:00.0): {code}, {word}, {text}");
        let (pci, what) = parse_message(&line).unwrap();
        prop_assert_eq!(pci_key(&pci), Some((0, bus, 0)));
        prop_assert_eq!(what, What::Sxid { switch, code, fatal: Some(fatal) });
    }

    #[test]
    fn aer_totals_read_back(n in any::<u64>(), other in any::<u64>()) {
        let text = format!("RxErr {other}\nBad TLP {other}\nTOTAL_ERR_COR {n}\n");
        prop_assert_eq!(total(&text, "ERR_COR"), Some(n));
    }
}
