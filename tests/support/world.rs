//! The world's shape, for the proxy ([`Proxy::place`](super::faults::Proxy::place)): how far each
//! region's endpoints are from the function, what a new connection costs, and which regions hold
//! nothing. A benchmark's model, not AWS: the emulator answers on loopback, so the proxy adds the
//! distances.
//!
//! - **Distance**: every answer from a region comes one round trip late, that region's.
//! - **Connections**: an endpoint (a service in a region) keeps the connections it has answered
//!   on, as an HTTP client's pool does (hyper's, under the Rust SDK; urllib3's, under boto3). A
//!   request that finds none idle opens one, paying `handshake_round_trips` more round trips (TCP,
//!   then TLS 1.3: two; TLS 1.2 would be three) before it arrives. A cold process has none.
//! - **Empty regions**: EC2's reads there (`DescribeIamInstanceProfileAssociations`,
//!   `DescribeInstances`) are answered by the proxy with the empty sets AWS answers for a region
//!   with no instances, as AWS would answer them: side by side. moto serves every request on one
//!   interpreter, so fifteen regions' reads sent together would queue there, which no AWS region
//!   does; and it would build each region's backend on its first request (tens of ms).

use std::collections::HashMap;
use std::time::Duration;

/// AWS's 17 default regions, each with its round trip from a function in us-east-1: the issue's
/// bands (its own region 30 ms, North America and Europe 70–100 ms, São Paulo 130 ms, Sydney and
/// Tokyo about 200 ms), the regions in between placed by the public inter-region latency tables
/// (cloudping.co's medians from us-east-1), never below the home's 30 ms. Endpoint time included.
pub const FROM_US_EAST_1: [(&str, u64); 17] = [
    ("us-east-1", 30),
    ("us-east-2", 70),
    ("ca-central-1", 70),
    ("us-west-1", 90),
    ("us-west-2", 90),
    ("eu-west-1", 85),
    ("eu-west-2", 90),
    ("eu-west-3", 95),
    ("eu-central-1", 100),
    ("eu-north-1", 100),
    ("sa-east-1", 130),
    ("ap-northeast-1", 200),
    ("ap-northeast-2", 200),
    ("ap-northeast-3", 200),
    ("ap-south-1", 200),
    ("ap-southeast-1", 220),
    ("ap-southeast-2", 200),
];

/// AWS's 17 default regions (those enabled in every account without opting in).
pub fn default_regions() -> [&'static str; 17] {
    FROM_US_EAST_1.map(|(region, _)| region)
}

/// A default region's round trip from us-east-1.
pub fn distance_of(region: &str) -> Duration {
    let (_, ms) = FROM_US_EAST_1
        .iter()
        .find(|(r, _)| *r == region)
        .expect("a default region");
    Duration::from_millis(*ms)
}

/// The operations a region with no instances answers with empty sets.
const EMPTY_ANSWERS: [(&str, &str); 2] = [
    ("DescribeInstances", "reservationSet"),
    (
        "DescribeIamInstanceProfileAssociations",
        "iamInstanceProfileAssociationSet",
    ),
];

#[derive(Debug, Clone, Default)]
pub struct World {
    /// Each region's round trip; a region not listed: the proxy's `set_latency`.
    pub distance: HashMap<String, Duration>,
    /// Added round trips when a request opens a new connection.
    pub handshake_round_trips: u32,
    /// Regions answered as empty by the proxy.
    pub empty: Vec<String>,
    /// Connections idle in each endpoint's pool: (service, region).
    idle: HashMap<(String, String), usize>,
}

impl World {
    /// The 17 default regions at their distances from us-east-1 (or all at `home`'s, if given),
    /// those but `holding` empty, each new connection `handshake_round_trips` more round trips.
    pub fn default_regions(holding: &[&str], at_home_distance: bool, handshake_round_trips: u32) -> Self {
        let home = Duration::from_millis(FROM_US_EAST_1[0].1);
        let distance = FROM_US_EAST_1
            .iter()
            .map(|(region, ms)| {
                let d = if at_home_distance {
                    home
                } else {
                    Duration::from_millis(*ms)
                };
                (region.to_string(), d)
            })
            .collect();
        let empty = FROM_US_EAST_1
            .iter()
            .map(|(region, _)| region.to_string())
            .filter(|r| !holding.contains(&r.as_str()))
            .collect();
        Self {
            distance,
            handshake_round_trips,
            empty,
            idle: HashMap::new(),
        }
    }

    pub fn regions(&self) -> [&'static str; 17] {
        default_regions()
    }

    /// A request to `service` in `region` arrives: its round trip there, and the handshake it
    /// pays first if no connection is idle (taking one if there is).
    pub fn connect(&mut self, service: &str, region: &str, otherwise: Duration) -> (Duration, Duration) {
        let trip = self.distance.get(region).copied().unwrap_or(otherwise);
        let idle = self.idle.entry((service.to_owned(), region.to_owned())).or_default();
        let handshake = match *idle {
            0 => trip * self.handshake_round_trips,
            _ => {
                *idle -= 1;
                Duration::ZERO
            }
        };
        (trip, handshake)
    }

    /// Its answer is given: the connection is idle again.
    pub fn release(&mut self, service: &str, region: &str) {
        *self.idle.entry((service.to_owned(), region.to_owned())).or_default() += 1;
    }

    /// AWS's answer to `operation` in an empty region, if the proxy gives it.
    pub fn empty_answer(&self, region: &str, operation: &str) -> Option<Vec<u8>> {
        if !self.empty.iter().any(|r| r == region) {
            return None;
        }
        let (_, set) = EMPTY_ANSWERS.iter().find(|(op, _)| *op == operation)?;
        let xml = format!(
            "<{operation}Response xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>proxy</requestId>\
             <{set}/></{operation}Response>"
        );
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
            xml.len()
        );
        Some(response.into_bytes())
    }
}
