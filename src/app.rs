//! What the function keeps for its process's lifetime: the configuration, its own clients, who it
//! is (asked once), and the clients and member sessions per account and region.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use tokio::sync::OnceCell;

use crate::accounts::{Home, Reach};
use crate::aws::clients::{Clients, Pool};
use crate::aws::cloudtrail::Pace;
use crate::aws::sts::{Identity, caller_identity};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::names::GuardDutyId;

pub struct App {
    pub config: Config,
    pub clients: Clients,
    identity: OnceCell<Identity>,
    /// Where Lambda says the function runs: known without asking STS.
    home: OnceLock<Home>,
    /// The ARN Lambda invoked the function by: what a release schedule invokes (`AUTO_RELEASE`).
    invoked_as: OnceLock<String>,
    /// The Lambda request being served (one at a time per process): what reports are named by.
    request_id: Mutex<Option<String>>,
    /// Clients and member credentials per account and region, kept while the process lives.
    pub(crate) pool: Pool,
    /// Our own GuardDuty detector per region (None: GuardDuty is not enabled there), asked once.
    detectors: Mutex<HashMap<String, Option<GuardDutyId>>>,
    /// CloudTrail's LookupEvents turns per account and region, shared by every walk (`CHAIN`).
    pub(crate) trail_pace: Pace,
}

impl App {
    pub fn new(config: Config, clients: Clients) -> Self {
        Self {
            config,
            clients,
            identity: OnceCell::new(),
            home: OnceLock::new(),
            invoked_as: OnceLock::new(),
            request_id: Mutex::default(),
            pool: Pool::default(),
            detectors: Mutex::default(),
            trail_pace: Pace::default(),
        }
    }

    /// Our account and role: asked once per process, on first use rather than at start-up.
    async fn identity(&self) -> Result<&Identity> {
        self.identity
            .get_or_try_init(|| caller_identity(&self.clients.sts))
            .await
    }

    /// Who the credentials are (the CLI's user), from STS once per process.
    pub async fn caller_arn(&self) -> Result<String> {
        Ok(self.identity().await?.arn.clone())
    }

    /// Record where Lambda's function ARN says the function runs (the first time is kept).
    pub fn runs_in(&self, home: Home) {
        let _ = self.home.set(home);
    }

    /// Record the ARN Lambda invoked the function by (the first time is kept).
    pub fn invoked_as(&self, function_arn: &str) {
        let _ = self.invoked_as.set(function_arn.to_owned());
    }

    /// Record the Lambda request being served.
    pub fn serving(&self, request_id: &str) {
        *self.request_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(request_id.to_owned());
    }

    /// The Lambda request being served; none in the CLI.
    pub fn request_id(&self) -> Option<String> {
        self.request_id.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The function a release schedule invokes: `AUTO_RELEASE_FUNCTION_ARN`, else the ARN Lambda
    /// invoked us by, which must be of the credentials' account: an emulator's names a placeholder
    /// one (see [`Self::home_for`]), and a schedule that invokes it would leave the role revoked.
    pub(crate) async fn release_target(&self) -> Result<String> {
        let configured = self.config.auto_release.as_ref().and_then(|a| a.function_arn.clone());
        self.schedule_target(configured, "AUTO_RELEASE_FUNCTION_ARN").await
    }

    /// The function a schedule invokes: `configured` (from `variable`), else the ARN Lambda
    /// invoked us by, as [`Self::release_target`] says.
    pub(crate) async fn schedule_target(&self, configured: Option<String>, variable: &str) -> Result<String> {
        if let Some(arn) = configured {
            return Ok(arn);
        }
        let unset = format!("set {variable} to the function a schedule invokes");
        let invoked = self
            .invoked_as
            .get()
            .ok_or_else(|| Error::Unexpected(format!("not invoked by Lambda: {unset}")))?;
        let ours = &self.identity().await?.home.account;
        match crate::names::account_of_arn(invoked) {
            account if account == ours => Ok(invoked.clone()),
            account => Err(Error::Unexpected(format!(
                "Lambda invoked {invoked}, of account {account}, but the credentials are of {ours} \
                 (an emulator, such as sam local invoke's?): {unset}"
            ))),
        }
    }

    /// Our account and partition, for a request naming `account` (or none). The function ARN
    /// Lambda hands each invocation says it without a round trip, and is taken where the request
    /// names that very account: a cold start then asks STS for our role alongside its first reads
    /// rather than before them, and [`Self::own_role`] still holds STS to it. Any other decision
    /// (another account, or none named) is made on the credentials' account, from STS once per
    /// process: an emulator's ARN names a placeholder account (the Runtime Interface Emulator that
    /// `sam local invoke` runs hands out `012345678912`), not ours.
    pub(crate) async fn home_for(&self, account: Option<&str>) -> Result<Home> {
        match self.home.get() {
            Some(home) if account == Some(home.account.as_str()) => Ok(home.clone()),
            _ => Ok(self.identity().await?.home.clone()),
        }
    }

    /// The role this run acts through, which it must never revoke: the member role in a member
    /// account, else the function's own. Either way STS must put us in the account Lambda named.
    pub(crate) async fn own_role(&self, reach: &Reach, home: &Home) -> Result<Option<String>> {
        let identity = self.identity().await?;
        if identity.home.account != home.account {
            return Err(Error::Unexpected(format!(
                "Lambda names account {} as the function's, but STS says it runs in {}",
                home.account, identity.home.account
            )));
        }
        Ok(match reach {
            Reach::Member { .. } => self.config.member_role_name.clone(),
            Reach::Home => identity.role.clone(),
        })
    }

    /// Our detector in `region` (as the administrator, it reads every member's findings there),
    /// from the cache, or asked with `ask` (ListDetectors) and kept for the process.
    pub(crate) async fn detector_in<F>(&self, region: &str, ask: F) -> Result<Option<GuardDutyId>>
    where
        F: Future<Output = Result<Option<GuardDutyId>>>,
    {
        if let Some(known) = self.detectors.lock().unwrap_or_else(|p| p.into_inner()).get(region) {
            return Ok(known.clone());
        }
        let detector = ask.await?;
        self.detectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(region.to_owned(), detector.clone());
        Ok(detector)
    }
}
