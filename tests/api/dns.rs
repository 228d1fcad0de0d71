//! A DNS server on 127.0.0.1 for the gateway under test (`dns.nameservers`).
//!
//! Answers A queries from a table, with TTL 0 so that no resolver may cache an answer; any
//! other query type for a known name gets an empty answer, an unknown name NXDOMAIN. A
//! "rebinding" name answers one address to its first A query and another to every later one.
//! Only what a stub resolver's query needs is parsed: one question, no compression.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

const TYPE_A: u16 = 1;
const NXDOMAIN: u16 = 3;
const FORMERR: u16 = 1;

enum Records {
    Fixed(Vec<Ipv4Addr>),
    Rebind { first: Ipv4Addr, later: Ipv4Addr },
}

#[derive(Default)]
struct Zone {
    records: HashMap<String, Records>,
    /// A queries received, per (lowercased) name.
    a_queries: HashMap<String, usize>,
}

/// A running test DNS server.
pub struct DnsServer {
    pub addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
}

impl DnsServer {
    /// Starts a server on 127.0.0.1 (UDP, a free port) with an empty table.
    pub async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let zone = Arc::new(Mutex::new(Zone::default()));
        let served = zone.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let Ok((len, from)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                if let Some(reply) = answer(&served, &buf[..len]) {
                    let _ = socket.send_to(&reply, from).await;
                }
            }
        });
        Self { addr, zone }
    }

    /// The `dns.nameservers` value pointing at this server.
    pub fn nameservers(&self) -> Vec<SocketAddr> {
        vec![self.addr]
    }

    /// `name` answers these A records (none: an empty answer).
    pub fn add(&self, name: &str, addrs: &[Ipv4Addr]) {
        self.zone
            .lock()
            .unwrap()
            .records
            .insert(name.to_ascii_lowercase(), Records::Fixed(addrs.to_vec()));
    }

    /// `name` answers `first` to its first A query and `later` to every later one.
    pub fn add_rebinding(&self, name: &str, first: Ipv4Addr, later: Ipv4Addr) {
        self.zone
            .lock()
            .unwrap()
            .records
            .insert(name.to_ascii_lowercase(), Records::Rebind { first, later });
    }

    /// How many A queries for `name` were received.
    pub fn a_queries(&self, name: &str) -> usize {
        let zone = self.zone.lock().unwrap();
        zone.a_queries.get(&name.to_ascii_lowercase()).copied().unwrap_or(0)
    }
}

/// The reply to one query message, or `None` for something that is not a query.
fn answer(zone: &Mutex<Zone>, query: &[u8]) -> Option<Vec<u8>> {
    let u16_at = |i: usize| Some(u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]));
    let id = u16_at(0)?;
    let flags = u16_at(2)?;
    if flags & 0x8000 != 0 {
        return None; // a response, not a query
    }
    let header = |rcode: u16, answers: u16| {
        let flags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode; // QR AA RD RA
        let mut out = Vec::with_capacity(512);
        for field in [id, flags, 1, answers, 0, 0] {
            out.extend_from_slice(&field.to_be_bytes());
        }
        out
    };
    let malformed = || {
        let mut out = header(FORMERR, 0);
        out[5] = 0; // no question echoed
        Some(out)
    };
    if u16_at(4)? != 1 {
        return malformed();
    }
    // The question: labels up to the root, then type and class.
    let mut labels = Vec::new();
    let mut pos = 12;
    loop {
        let len = usize::from(*query.get(pos)?);
        if len == 0 {
            pos += 1;
            break;
        }
        if len & 0xc0 != 0 {
            return malformed();
        }
        labels.push(String::from_utf8_lossy(query.get(pos + 1..pos + 1 + len)?).to_ascii_lowercase());
        pos += 1 + len;
    }
    let qtype = u16_at(pos)?;
    let question = query.get(12..pos + 4)?;
    let name = labels.join(".");

    let mut zone = zone.lock().unwrap();
    let count = if qtype == TYPE_A {
        let n = zone.a_queries.entry(name.clone()).or_default();
        *n += 1;
        *n
    } else {
        0
    };
    let addrs = match zone.records.get(&name) {
        None => {
            let mut out = header(NXDOMAIN, 0);
            out.extend_from_slice(question);
            return Some(out);
        }
        Some(_) if qtype != TYPE_A => Vec::new(),
        Some(Records::Fixed(addrs)) => addrs.clone(),
        Some(Records::Rebind { first, later }) => vec![if count == 1 { *first } else { *later }],
    };
    let mut out = header(0, u16::try_from(addrs.len()).unwrap());
    out.extend_from_slice(question);
    for addr in addrs {
        out.extend_from_slice(&[0xc0, 12]); // the name: a pointer to the question's
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes()); // class IN
        out.extend_from_slice(&0u32.to_be_bytes()); // TTL 0: never cached
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&addr.octets());
    }
    Some(out)
}
