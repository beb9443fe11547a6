//! # shop-local
//!
//! The whole product on one machine, in one process: the same handlers the
//! Lambda functions run, on the embedded DynamoDB engine (a file in the data
//! directory), with everything AWS and the outside world would provide
//! emulated or simulated. Tests start a [`Stack`] on port 0; `shop`
//! (src/main.rs, src/cli/) is its command line, and nothing in this library
//! knows it: each command parses its arguments, calls the library and
//! renders what it returned.
//!
//! # Layout
//!
//! | room | what lives there |
//! | --- | --- |
//! | [`emulate`] | what AWS provides in the cloud: API Gateway with its JWT authorizer ([`emulate::api_gateway`], [`jwt`]), the table's stream ([`emulate::runner`] delivers the outbox), EventBridge with its rules and archive ([`emulate::bus`], [`emulate::rules`]), SQS queues and DLQs ([`emulate::queue`]), the schedules ([`emulate::schedules`]) |
//! | [`engine`] | the DynamoDB engine under the store (embedded, or an endpoint such as DynamoDB Local) and the meter on every store call |
//! | [`sim`] | the outside world: the Toss-compatible PG simulator ([`sim::pg`]) and the data-platform sink ([`sim::sink`]), each on its own SQLite ([`sim::db`]); both alone for a deployed stack ([`sim::Simulators`]) |
//! | [`console`] | the saga console at `/console`: operators' pages over the store, the queues and the simulators |
//! | [`stack`] | a running stack: [`Stack::start`] wires all of the above on one engine; [`open`] the app alone on a data dir |
//! | [`seed`] | catalog files (products, coupons, users, campaigns) and the demo catalog |
//! | [`ops`] | operations on the saga over an app: DLQs, replay, republish, an order's timeline |
//! | [`find`] | the order finder: one filter (status, consumer, stuck, method, time, user, correlation id) read from an index or a capped window, paged, exported |
//! | [`bulk`] | redrive, replay or ask the PG for everything the finder found, locally or on a deployed stack |
//! | [`deployed`] | a stack deployed to AWS, resolved by name: its table, queues, archive; the same operations against it |
//! | [`dump`] | the business state as one canonical document (`shop dump`, the replay check) |
//! | [`bench`] | the benchmarks: placement, the whole saga (and the chaos soak), the simulators |
//! | [`otlp`] | `shop up --otlp`: the stack's spans to an OpenTelemetry collector |
//! | [`listen`] | what every local listener checks first: a loopback `Host` |
//! | [`secrets`] | the data dir's random secrets: JWT key, PG secret key, the DynamoDB port's credentials |
//! | [`tasks`] | the stack's background tasks, stopped together |
//! | [`chaos`] | the fault injector of the chaos soak (`shop up --chaos`): every fault class at random, seeded |
//!
//! Nothing here is linked into a Lambda binary.

pub mod bench;
pub mod bulk;
pub mod chaos;
pub mod console;
pub mod deployed;
pub mod dump;
pub mod emulate;
pub mod engine;
pub mod find;
pub mod jwt;
pub mod listen;
pub mod ops;
pub mod otlp;
pub mod secrets;
pub mod seed;
pub mod sim;
pub mod stack;
pub mod tasks;

pub use sim::{SimulatorOptions, SimulatorState, Simulators, open_simulators};
pub use stack::{Stack, StackOptions, open};
