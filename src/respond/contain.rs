//! Containment, top to bottom: [`run`] reaches the finding's account, and [`contain_confirmed`]
//! confirms, reads the role's facts, asks the gate, writes, and cycles the fleet. Each phase
//! returns what it did; only these two functions keep those values ([`Progress`]), and
//! [`contain`] assembles the report from them however far the run got.
//!
//! The one decision to write is the [`gate`]'s; the only write of a deny is [`revoke::write`],
//! which needs the gate's [`Permit`](crate::gate::Permit).

use tracing::{Instrument, info_span, warn};

use crate::accounts::{Home, Reach};
use crate::app::App;
use crate::aws::clients::Target;
use crate::error::{Error, Result};
use crate::finding::{Finding, FindingSummary, Incident};
use crate::gate::{self, Act, Case, Stolen, Verdict};
use crate::report::{CutoffReport, Ended, Outcome, Report, RoleSummary, Verification};
use crate::respond::administrator::{self, Keeper};
use crate::respond::establish::{self, About, Alleged, Established, Place};
use crate::respond::journal::Journal;
use crate::respond::prefetch::{self, Prefetch};
use crate::respond::progress::{After, Confirmation, Progress};
use crate::respond::revoke::{self, Revocation, RoleRead};
use crate::respond::rounds::{self, Cycling};
use crate::respond::{auto_release, fleet, follow_up, tamper};
use crate::wait::Deadline;

/// Contain what `alleged` names, and report what was done.
pub async fn contain(app: &App, alleged: Alleged, deadline: Deadline) -> (Report, Option<Error>) {
    let span = info_span!("remediate", finding_id = alleged.finding_id());
    let contained = async {
        let request = alleged.request();
        let dry_run = app.config.dry_run || request.dry_run_requested;
        let steps = Journal::new(alleged.finding_id(), deadline);
        let mut progress = Progress::default();
        // Boxed, as each phase below: the futures nest deep enough to overflow a thread's stack.
        let ended = Box::pin(run(app, (alleged, &request.summary), dry_run, &steps, &mut progress)).await;
        let mut report = progress.assemble(request, dry_run, steps.into_records(), ended.as_ref());
        report.harden(app.config.require_imdsv2);
        if let Err(e) = &ended {
            warn!(error = %e, needs_attention = ?report.needing_attention(), "remediation failed");
        }
        (report, ended.err())
    };
    contained.instrument(span).await
}

/// Reach the finding's account and region, then contain with the prefetch beside.
async fn run(
    app: &App,
    (alleged, summary): (Alleged, &FindingSummary),
    dry_run: bool,
    steps: &Journal,
    progress: &mut Progress,
) -> Result<Ended> {
    // 1. Place: the finding's account and region.
    let home = app.home_for(summary.account_id.as_deref()).await?;
    alleged.check_partition(&home)?;
    let place = establish::place(summary, &home, app.clients.region())?;
    progress.place = Some(place.clone());
    // 2. Reach: our way in, after the administrator has read a member's finding.
    let (reached, read) = match reach(app, &alleged, summary, (home, place), steps).await? {
        Ok(reached) => reached,
        Err(ended) => return Ok(ended),
    };
    progress.session = reached.target.session.clone();
    // 3. The prefetch: reads started before GuardDuty confirms (its contract: `prefetch`).
    let (target, place) = (&reached.target, &reached.place);
    let (mut prefetch, read_fleet) = Prefetch::start(app, (target, place), alleged.incident(), dry_run, steps);
    let confirmed = contain_confirmed(
        app,
        &reached,
        (alleged, read),
        (&mut prefetch, dry_run),
        steps,
        progress,
    );
    let ended = prefetch::beside(read_fleet, Box::pin(confirmed)).await;
    progress.claim_warning = prefetch.release_unused(app, steps).await;
    ended
}

/// Confirm, then contain: the role's facts, the gate, the write with the fleet's read, the rounds.
async fn contain_confirmed(
    app: &App,
    reached: &Reached,
    alleged: (Alleged, Option<Finding>),
    (prefetch, dry_run): (&mut Prefetch, bool),
    steps: &Journal,
    progress: &mut Progress,
) -> Result<Ended> {
    let (target, place) = (&reached.target, &reached.place);
    // 4. Confirm: GuardDuty's copy, read while the prefetch reads the named role and claims.
    let (incident, verification, own_role, archived) = match confirm(app, reached, alleged, prefetch, steps).await? {
        Ok(confirmed) => confirmed,
        Err(ended) => return Ok(ended),
    };
    if archived.is_none() {
        progress.confirmed = Some(Confirmation::of(&incident, verification));
    }
    // 5. The role's facts.
    let about = establish::about(target, &incident.subject, &place.region, steps).await?;
    progress.role = Some((RoleSummary::named(&about.role), Vec::new()));
    let (read, tampered) = role_facts(app, reached, prefetch, (&incident, &about), steps).await?;
    // 6. The gate: every rule that allows a write.
    let stolen = stolen(&incident, &about);
    let (verdict, warnings) = gate::decide(&Case {
        role_name: &about.role,
        role: read.role.as_ref(),
        in_force: &read.in_force,
        stolen,
        own_role: own_role.as_deref(),
        member_role: app.config.member_role_name.as_deref(),
        protected_roles: &app.config.protected_roles,
        now: prefetch.at,
        dry_run,
    });
    let warnings = [tampered, warnings].concat();
    if let Some(why) = archived {
        let (kept, ended) = repeat_delivery(&incident, &about, verdict, why);
        if let Some((role, cutoff)) = kept {
            (progress.role, progress.revocation) = (Some((role, warnings)), Some((cutoff, None)));
        }
        return Ok(ended);
    }
    if let Some(role) = verdict.role() {
        progress.role = Some((RoleSummary::of(role), warnings));
    }
    let (role, act) = match verdict {
        Verdict::Act(role, act) => (role, act),
        Verdict::Missing(why) | Verdict::Refuse(_, why) => return Ok(Ended::skipped(why)),
    };
    // 7. Carry the ruling out (write the deny it permitted), while the fleet is read.
    let intended = act.cutoff();
    let named_region = fleet::named_region(&incident, place);
    let named = rounds::named_in(&about, &named_region);
    let (fleet, reading) = prefetch.take_fleet().or_discover(target, &about.role, named, steps);
    let claim = (incident.finding_id(), prefetch.claim());
    let written = async {
        let revocation = revoke::carry_out(app, &target.iam, (&about.role, act), claim, steps).await;
        let failed = || (revoke::failed(intended), None);
        progress.revocation = Some(revocation.as_ref().map_or_else(|_| failed(), Revocation::report));
        // If the revocation failed, the instances' credentials still work: leave them alone.
        let revocation = revocation?;
        // 8. The rounds, and beside them the key's record, the release's schedule and the walk.
        let cycled = ((&incident, &about, named_region.as_str(), dry_run), fleet);
        let after = after_the_write(app, reached, cycled, (&revocation, role, stolen), steps);
        progress.keep_after(Box::pin(after).await)
    };
    // The fleet is read region by region beside the write, and beside the rounds that use it.
    prefetch::beside(reading, Box::pin(written)).await?;
    // 9. Archive the finding GuardDuty confirmed, once it is contained.
    let ended = Ended::finished(dry_run, steps.wrote_anything());
    progress.archive_warning = archive(app, reached, (&incident, verification), &ended, steps).await;
    Ok(ended)
}

/// Archive the finding GuardDuty confirmed (`ARCHIVE_FINDINGS`) once it is contained; why not, if
/// that failed.
async fn archive(
    app: &App,
    reached: &Reached,
    (incident, verification): (&Incident, Option<Verification>),
    ended: &Ended,
    steps: &Journal,
) -> Option<String> {
    let confirmed = matches!(verification, Some(Verification::Confirmed | Verification::Fetched));
    let finished = matches!(ended.outcome, Outcome::Remediated | Outcome::AlreadyRemediated);
    let locator = incident
        .locator
        .as_ref()
        .filter(|_| app.config.archive_findings && finished && confirmed)?;
    let (target, place) = (&reached.target, &reached.place);
    administrator::archive(app, target, &reached.keeper, place, locator, steps).await
}

/// The finding's account and region, reached.
struct Reached {
    home: Home,
    place: Place,
    reach: Reach,
    target: Target,
    keeper: Keeper,
}

/// How the finding's account is reached, and with what; or how the run ends before it is.
/// A member's finding is read by the administrator (this account) before its role is assumed,
/// so that a forged one is refused having touched nothing in the member account.
async fn reach(
    app: &App,
    alleged: &Alleged,
    summary: &FindingSummary,
    (home, place): (Home, Place),
    steps: &Journal,
) -> Result<std::result::Result<(Reached, Option<Finding>), Ended>> {
    if let Some(reason) = establish::unvouched_elsewhere(summary, &home, &place) {
        return Ok(Err(Ended::skipped(reason)));
    }
    let reach = match establish::route(app, &home, &place) {
        Ok(reach) => reach,
        Err(reason) => return Ok(Err(Ended::skipped(reason))),
    };
    let (read, keeper) = match administrator::first(app, alleged, (&home.account, &place), steps).await? {
        Ok(read) => read,
        Err(reason) => return Ok(Err(refuse(reason))),
    };
    let target = establish::reach(app, &reach, &place, alleged.finding_id()).await?;
    let reached = Reached {
        home,
        place,
        reach,
        target,
        keeper,
    };
    // GuardDuty's copy of a member's finding, as the administrator read it.
    Ok(Ok((reached, read)))
}

/// GuardDuty's confirmation, with our own role (never revoked) and the prefetch's reads: the
/// incident to act on, how it was established, our own role, and why GuardDuty shows it archived
/// if it does. Or how the run ends: skipped or refused.
type Confirmed = (Incident, Option<Verification>, Option<String>, Option<String>);

async fn confirm(
    app: &App,
    reached: &Reached,
    (alleged, read): (Alleged, Option<Finding>),
    prefetch: &mut Prefetch,
    steps: &Journal,
) -> Result<std::result::Result<Confirmed, Ended>> {
    let Reached {
        home,
        place,
        reach,
        target,
        ..
    } = reached;
    let verify = app.config.verify_findings;
    let establishing = establish::establish(verify, target, alleged, (place, read), steps);
    let (established, own_role) = prefetch
        .confirm(app, target, (establishing, app.own_role(reach, home)), steps)
        .await;
    let (incident, verification, archived) = match established? {
        Established::Act(incident, verification) => (*incident, verification, None),
        Established::Archived(incident, reason) => (*incident, None, Some(reason)),
        Established::Skip(reason) => return Ok(Err(Ended::skipped(reason))),
        Established::Refuse(reason) => return Ok(Err(refuse(reason))),
    };
    // A repeat delivery changes nothing, so it does not fail for want of our own role: the gate
    // is then told none, as before.
    let own_role = match archived {
        Some(_) => own_role.unwrap_or_default(),
        None => own_role?,
    };
    Ok(Ok((incident, verification, own_role, archived)))
}

/// The role's facts, read with the first reads; a tag that decides the response and that the
/// stolen key wrote is not among them ([`tamper`]), and what the report says of it.
async fn role_facts(
    app: &App,
    reached: &Reached,
    prefetch: &mut Prefetch,
    (incident, about): (&Incident, &About),
    steps: &Journal,
) -> Result<(RoleRead, Vec<String>)> {
    let read = prefetch.role(&about.role, &reached.target, steps).await?;
    let Some(key) = incident.summary.access_key_id.as_deref() else {
        return Ok((read, Vec::new()));
    };
    let sought = tamper::Sought {
        account: &reached.place.account,
        partition: &reached.home.partition,
        key,
        role: &about.role,
        since: crate::plan::chain::since(incident.first_seen, prefetch.at),
    };
    Ok(tamper::checked(app, &reached.target, sought, read, steps).await)
}

/// What the gate is told of the stolen credentials: the finding's, as confirmed.
fn stolen<'a>(incident: &'a Incident, about: &'a About) -> Stolen<'a> {
    Stolen {
        role_id: about.role_id.as_deref(),
        first_seen: incident.first_seen,
        key: incident.summary.access_key_id.as_deref(),
        last_seen: incident.last_seen,
        periodic: incident.summary.source == crate::input::custodian::REPORTED_SOURCE,
    }
}

/// GuardDuty shows the finding archived since it was published. If the role's revocation already
/// covers it (the gate keeps it), this is a repeat delivery of a finding already contained, which
/// this function archived once done: nothing to do. Otherwise someone decided not to act on it:
/// refused.
fn repeat_delivery(
    incident: &Incident,
    about: &About,
    verdict: Verdict<'_>,
    why: String,
) -> (Option<(RoleSummary, CutoffReport)>, Ended) {
    let (role, kept) = match verdict {
        Verdict::Act(role, Act::Keep(kept)) if incident.first_seen.is_some() => (role, kept),
        _ => return (None, refuse(why)),
    };
    let (report, _) = Revocation::Kept(kept).report();
    let reason = format!(
        "GuardDuty shows finding {} archived, and role {}'s revocation (cut-off {}) covers its first sighting: \
         a repeat delivery of a finding already contained; nothing changed",
        incident.finding_id(),
        about.role,
        report.at
    );
    let ended = Ended {
        outcome: Outcome::AlreadyRemediated,
        reason: Some(reason),
    };
    (Some((RoleSummary::of(role), report)), ended)
}

/// Once the revocation stands: cycle the fleet in rounds, and beside it record the key the
/// revocation answered, schedule the release, and walk the stolen key's trail.
async fn after_the_write(
    app: &App,
    reached: &Reached,
    ((incident, about, named_region, dry_run), fleet): ((&Incident, &About, &str, bool), fleet::Discovery),
    (revocation, role, stolen): (&Revocation, &crate::plan::RoleFacts, Stolen<'_>),
    steps: &Journal,
) -> (After, Result<()>) {
    let (place, cutoff) = (&reached.place, revocation.cutoff());
    let cycling = Cycling {
        app,
        target: &reached.target,
        incident,
        about,
        named_region,
        role_tags: &role.tags,
        covers_from: revocation.covers_from(),
        dry_run,
    };
    let cycle = Box::pin(cycling.discovered(fleet, cutoff, steps));
    // The key's record names the cut-off in force, so it follows the write; nothing waits for it.
    let record = revoke::record(
        &reached.target.iam,
        (&about.role, role),
        revocation,
        stolen,
        dry_run,
        steps,
    );
    let safe_at = cutoff + app.config.revoke_hold();
    let release = auto_release::schedule(app, (&place.account, &about.role), safe_at, dry_run, steps);
    let walk = follow_up::after_containment(
        app,
        (&reached.home, place),
        (incident, &about.role),
        cutoff,
        dry_run,
        steps,
    );
    let (unrecorded, (cycled, settled), scheduled, chained) = tokio::join!(record, cycle, release, Box::pin(walk));
    // The cycling's failure first, then the walk's.
    let (settled, failure) = match settled {
        Ok(at) => (Some(at), chained.failure.map_or(Ok(()), Err)),
        Err(e) => (None, Err(e)),
    };
    let after = After {
        unrecorded,
        cycled,
        settled,
        scheduled,
        chain: chained.report,
        chain_warnings: chained.warnings,
    };
    (after, failure)
}

fn refuse(reason: String) -> Ended {
    warn!(%reason, "refused: GuardDuty does not confirm the finding; nothing changed");
    Ended {
        outcome: Outcome::Refused,
        reason: Some(reason),
    }
}
