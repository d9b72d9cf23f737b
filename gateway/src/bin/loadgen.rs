//! The `loadgen` binary: HTTP load against a gateway (see `gateway::loadgen`).
//!
//! Exit status: 0 on success, 1 when a flash sale did not sell exactly its stock, 2 when a
//! workload could not run (bad URL, no gateway, a set-up call refused).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use gateway::loadgen::{
    run_bench, run_feed, run_flash_sale, run_paced, run_sustained, Bench, FlashSale, HttpClient,
    LoadgenError, Paced, Sustained, Target, MAX_BATCH_ORDERS,
};

/// HTTP load generator for the flashstock gateway (API.md): flash sales and sustained order
/// load over a fixed pool of keep-alive connections.
#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    version,
    after_help = "\
Examples:
  loadgen flash-sale --stock 10 --buyers 10000
  loadgen sustained --clients 64 --seconds 10
  loadgen paced --rate 15000 --seconds 10
  loadgen bench --url http://127.0.0.1:8080

Latency is per request, from its send on a connection to the end of its answer; waiting
for a free connection in the pool is not included (a flash sale's wall time includes it).
A paced run counts each order's latency from the moment it was due instead."
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Connection")]
struct Common {
    /// The gateway's base URL (plain HTTP).
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Keep-alive connections in the pool: the most requests in flight at once.
    #[arg(long, global = true, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    connections: u32,
    /// A request without a complete answer after this many seconds counts as failed.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// W1: create a SKU with STOCK units, then BUYERS single-unit orders all at once; fails
    /// (exit 1) unless exactly min(stock, buyers) succeed and the SKU holds that many reserved.
    #[command(after_help = "\
Example:
  loadgen flash-sale --stock 10 --buyers 10000 --connections 256

Buyer n is user buyer-<n> with order id <sku>-fs-<n>. Prints buyers, succeeded (201),
out_of_stock (409), other answers by status and code, wall time, p50/p99/max latency and the
SKU's final available/reserved/sold.")]
    FlashSale(FlashSaleArgs),
    /// W2/W3: closed-loop clients placing single-unit orders for a duration, against one hot
    /// SKU or many (stock 2^50 each), one order per request or in batches.
    #[command(after_help = "\
Examples:
  loadgen sustained --clients 64 --seconds 10              # W2: one hot SKU
  loadgen sustained --clients 256 --seconds 10 --skus 10000  # W3: 10,000 SKUs
  loadgen sustained --clients 16 --skus 10000 --batch 100  # W3 in batches of 100 orders

Prints orders/s (2xx answers), p50/p99/max latency and the answers by status and code.
With --batch: orders/s counts orders answered 2xx inside the batches' results, outcomes
are counted per order and per request, latency is per request.
Non-2xx answers are counted, not fatal. Use --connections >= --clients.")]
    Sustained(SustainedArgs),
    /// Open loop: RATE single-unit orders per second on a fixed schedule for a duration,
    /// sent whether or not earlier ones were answered (stock 2^50 per SKU).
    #[command(after_help = "\
Examples:
  loadgen paced --rate 15000 --seconds 10               # one hot SKU
  loadgen paced --rate 15000 --seconds 10 --skus 10000
  loadgen paced --rate 10000 --seconds 10 --timeline 100   # and per 100 ms of the schedule
  loadgen paced --rate 15000 --seconds 10 --warmup 2    # 2 s of the same load first, not counted

Each order's latency counts from the moment the schedule said to send it, so time spent
waiting for a free connection (at most --connections in flight) or behind a load generator
that fell behind is included; the report also says how far the sends fell behind. Prints
orders/s answered 2xx, p50/p99/max latency and the answers by status and code.")]
    Paced(PacedArgs),
    /// W1, W2 at 64 and 256 clients, and W3 (10,000 SKUs at 256 clients), one after another,
    /// in one table.
    #[command(after_help = "\
Example:
  loadgen bench --seconds 10 --url http://127.0.0.1:8080

Exits 1 if the W1 flash sale did not sell exactly its stock.")]
    Bench(BenchArgs),
    /// One event-feed consumer: follows the SSE stream from the head for a duration and
    /// prints events/s and lag (arrival minus the event's time_ms). Run it beside a load.
    #[command(after_help = "\
Example (W2 with a consumer beside it):
  loadgen feed --seconds 10 & loadgen sustained --clients 256 --seconds 8")]
    Feed(FeedArgs),
}

#[derive(Debug, Args)]
struct FeedArgs {
    /// How long to follow the stream.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    seconds: Duration,
}

#[derive(Debug, Args)]
struct FlashSaleArgs {
    /// Units on sale.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=(1u64 << 53) - 1))]
    stock: u64,
    /// Buyers, each ordering one unit, all at once.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    buyers: u64,
    /// SKU name [default: flash-<unix ms>].
    #[arg(long)]
    sku: Option<String>,
}

#[derive(Debug, Args)]
struct SustainedArgs {
    /// Closed-loop clients, each with one order in flight at a time.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    clients: u32,
    /// How long to run.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    seconds: Duration,
    /// SKUs to spread the orders over (1: one hot SKU).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    skus: u32,
    /// Concurrent SKU creates while setting up, each over a connection of its own (beside
    /// --connections, closed once the SKUs exist).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    create_concurrency: u32,
    /// A soak: print orders/s, 503s, other failures and the slowest answer every SECS to
    /// stderr while running, e.g. `--seconds 480 --progress 60 --skus 10000 --clients 128`.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    progress: Option<Duration>,
    /// Send each request as POST /v1/orders/batch carrying N single-unit orders (spread over
    /// the SKUs like single orders) instead of one POST /v1/orders per order.
    #[arg(long, value_name = "N", value_parser = parse_batch_size)]
    batch: Option<usize>,
    /// Each order's reservation_ttl_ms (the API's range); without it, the API's default of
    /// 15 minutes. A soak with `--reservation-ttl-ms 60000` sees its orders expire as it runs.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1_000..=86_400_000))]
    reservation_ttl_ms: Option<u64>,
    /// Leave each order's order_id out, so the gateway makes it (random ids, as for a client
    /// that sends none); without it, order n of the run is <run>-o-<n>.
    #[arg(long)]
    gateway_ids: bool,
}

#[derive(Debug, Args)]
struct PacedArgs {
    /// Orders offered per second.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    rate: u64,
    /// How long to offer them.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    seconds: Duration,
    /// SKUs to spread the orders over (1: one hot SKU).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    skus: u32,
    /// Also give p50, p99 and max for each slice of the schedule this many milliseconds
    /// wide, by when each order was due: a short stall that the whole run's p99 hides.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    timeline: Option<u64>,
    /// Offer the same load for this long first and leave it out of the figures: a cluster
    /// just started answers its first few hundred milliseconds slowly.
    #[arg(long, value_name = "SECS", default_value = "0", value_parser = parse_seconds_or_zero)]
    warmup: Duration,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// How long each sustained workload (W2, W3) runs.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    seconds: Duration,
}

/// Orders in one batch: 1 to API.md's limit.
fn parse_batch_size(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_BATCH_ORDERS).contains(&n) => Ok(n),
        _ => Err(format!(
            "must be a whole number from 1 to {MAX_BATCH_ORDERS}"
        )),
    }
}

/// A positive number of seconds, fractions allowed.
fn parse_seconds(s: &str) -> Result<Duration, String> {
    parse_seconds_or_zero(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "must be a positive number of seconds".to_string())
}

/// A number of seconds that may be zero (nothing of that part), e.g. a warm-up.
fn parse_seconds_or_zero(s: &str) -> Result<Duration, String> {
    let seconds: f64 = s.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(seconds)
        .ok()
        .ok_or_else(|| "must be zero or a positive number of seconds".to_string())
}

/// Runs the command; `Ok(false)` when a check failed.
async fn run(cli: Cli) -> Result<bool, LoadgenError> {
    let target = Target::parse(&cli.common.url)?;
    let connections = cli.common.connections as usize;
    let client = HttpClient::new(target, connections, Duration::from_secs(cli.common.timeout));
    match cli.command {
        Command::FlashSale(args) => {
            let mut sale = FlashSale::new(args.stock, args.buyers);
            if let Some(sku) = args.sku {
                sale.sku = sku;
            }
            eprintln!(
                "flash sale: SKU {} with stock {}, {} buyers over {connections} connections to {}",
                sale.sku, sale.stock, sale.buyers, cli.common.url
            );
            let report = run_flash_sale(&client, &sale).await?;
            print!("{report}");
            Ok(report.passed())
        }
        Command::Sustained(args) => {
            let clients = args.clients as usize;
            if clients > connections {
                eprintln!(
                    "warning: {clients} clients share {connections} connections; \
                     raise --connections to run them all at once"
                );
            }
            let run = Sustained {
                create_concurrency: args.create_concurrency as usize,
                progress_every: args.progress,
                batch: args.batch,
                reservation_ttl_ms: args.reservation_ttl_ms,
                gateway_ids: args.gateway_ids,
                ..Sustained::new(clients, args.seconds, args.skus as usize)
            };
            let per_request = match run.batch {
                Some(n) => format!(", batches of {n} orders"),
                None => String::new(),
            };
            eprintln!(
                "sustained: creating {} SKU(s), then {clients} clients for {:.1} s against {}{per_request}",
                run.skus,
                args.seconds.as_secs_f64(),
                cli.common.url
            );
            let report = run_sustained(&client, &run).await?;
            print!("{report}");
            Ok(true)
        }
        Command::Paced(args) => {
            let run = Paced {
                timeline: args.timeline.map(Duration::from_millis),
                warmup: args.warmup,
                ..Paced::new(args.rate, args.seconds, args.skus as usize)
            };
            eprintln!(
                "paced: creating {} SKU(s), then {} orders/s for {:.1} s (after {:.1} s of \
                 warm-up) against {} over at most {connections} connections",
                run.skus,
                run.rate,
                args.seconds.as_secs_f64(),
                args.warmup.as_secs_f64(),
                cli.common.url
            );
            let report = run_paced(&client, &run).await?;
            print!("{report}");
            Ok(true)
        }
        Command::Feed(args) => {
            let report = run_feed(&client, args.seconds).await?;
            print!("{report}");
            Ok(report.gaps_or_repeats == 0)
        }
        Command::Bench(args) => {
            let bench = Bench {
                duration: args.seconds,
                ..Bench::default()
            };
            let report = run_bench(&client, &bench, |step| eprintln!("running {step}")).await?;
            println!();
            print!("{}", report.table());
            let problems = report.problems();
            for p in &problems {
                println!("FAIL (W1): {p}");
            }
            Ok(problems.is_empty())
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
