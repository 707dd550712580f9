//! After a response, telling the people: the finding's workflow in Security Hub
//! (`SECURITY_HUB_UPDATES`), and the chat message (`NOTIFICATION_TOPIC_ARN`). Both from the
//! function's own account, side by side. Best effort: a failure is a warning on the report and
//! its `securityHub` or `notification` section, never a change of the outcome or a retry of the
//! event (a retry would repeat a containment already done to say it again).

use crate::app::App;
use crate::aws::clients::{securityhub_in, sns_in};
use crate::aws::{securityhub, sns};
use crate::message;
use crate::plan::workflow::{self, WorkflowUpdate};
use crate::report::{Announced, Report};

pub async fn announce(app: &App, report: &mut Report) {
    let update = (app.config.security_hub_updates)
        .then(|| workflow::workflow_update(report))
        .flatten();
    // A dry run writes nothing, a message included.
    let chat = (app.config.notification_topic_arn.as_deref())
        .zip(message::chat_notification(report))
        .filter(|_| !report.dry_run);
    let (hub, published) = tokio::join!(
        async {
            match &update {
                Some(update) => Some(update_workflow(app, update).await),
                None => None,
            }
        },
        async {
            match chat {
                Some((topic, message)) => Some(publish(app, topic, message.to_string()).await),
                None => None,
            }
        }
    );
    for (section, outcome) in [(&mut report.security_hub, hub), (&mut report.notification, published)] {
        if let Some((announced, warning)) = outcome {
            report.warnings.extend(warning);
            *section = Some(announced);
        }
    }
}

async fn update_workflow(app: &App, update: &WorkflowUpdate) -> (Announced, Option<String>) {
    let client = securityhub_in(&app.clients.securityhub, &update.region);
    let failed = |why: String| {
        let warning = format!(
            "Security Hub's workflow for {} was not set to {}: {why}",
            update.finding_arn, update.status
        );
        tracing::warn!(%warning);
        (
            Announced {
                status: "failed",
                workflow: Some(update.status),
                detail: Some(why),
            },
            Some(warning),
        )
    };
    match securityhub::update_workflow(&client, update).await {
        Ok(None) => {
            let announced = Announced {
                status: "updated",
                workflow: Some(update.status),
                detail: None,
            };
            (announced, None)
        }
        Ok(Some(refused)) => failed(refused),
        Err(e) => failed(e.to_string()),
    }
}

async fn publish(app: &App, topic: &str, message: String) -> (Announced, Option<String>) {
    let region = topic.split(':').nth(3).unwrap_or_default();
    match sns::publish(&sns_in(&app.clients.sns, region), topic, message).await {
        Ok(id) => {
            let announced = Announced {
                status: "published",
                workflow: None,
                detail: Some(id),
            };
            (announced, None)
        }
        Err(e) => {
            let warning = format!("the chat message was not published to {topic}: {e}");
            tracing::warn!(%warning);
            let announced = Announced {
                status: "failed",
                workflow: None,
                detail: Some(e.to_string()),
            };
            (announced, Some(warning))
        }
    }
}
