# template.yaml's parameters, one variable each, written by scripts/terraform_parameters.py:
# change the template, then run the script, rather than editing this file.

variable "DryRun" {
  description = "Read and plan only; write nothing. Every report says what would have been done."
  type        = string
  default     = "false"

  validation {
    condition     = contains(["true", "false"], var.DryRun)
    error_message = "DryRun must be one of: true, false."
  }
}

variable "DefaultAction" {
  description = "Action for instances whose instance and role carry no action tag. revoke (the default) touches no instance; they recover at their next credential rotation."
  type        = string
  default     = "revoke"

  validation {
    condition     = contains(["revoke", "cycle", "cycle-reboot", "isolate", "ignore"], var.DefaultAction)
    error_message = "DefaultAction must be one of: revoke, cycle, cycle-reboot, isolate, ignore."
  }
}

variable "ActionTagKey" {
  description = "Tag key (read on instances, then roles) that chooses the action."
  type        = string
  default     = "exfil-responder:action"

  validation {
    condition     = length(var.ActionTagKey) >= 1 && length(var.ActionTagKey) <= 128
    error_message = "ActionTagKey must be 1 to 128 characters long."
  }
}

variable "ProtectedRoles" {
  description = "Comma-separated role names that are never changed (besides service-linked roles and this function's own)."
  type        = string
  default     = ""
}

variable "Chain" {
  description = "After containment, walk the stolen key's trail in CloudTrail (LookupEvents). contain: revoke the sessions of every role it assumed (by the same rules as the instance's role) and deactivate every access key it created; report: only list them; off: no walk. Calls that leave a way back in (CreateUser, CreateLoginProfile, ...) are listed for a person, never changed."
  type        = string
  default     = "contain"

  validation {
    condition     = contains(["contain", "report", "off"], var.Chain)
    error_message = "Chain must be one of: contain, report, off."
  }
}

variable "NotificationTopicArn" {
  description = "Optional SNS topic for a person-readable summary of each containment, failure, refusal, release and restore, in the custom-notification format that AWS's chat integration for Slack, Microsoft Teams and Chime posts to a channel. The JSON report is unchanged."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^(arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+)?$", var.NotificationTopicArn))
    error_message = "NotificationTopicArn must match ^(arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+)?$ (the template's AllowedPattern)."
  }
}

variable "AlarmTopicArn" {
  description = "Optional SNS topic the alarms notify."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^(arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+)?$", var.AlarmTopicArn))
    error_message = "AlarmTopicArn must match ^(arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+)?$ (the template's AllowedPattern)."
  }
}

variable "MemberRoleName" {
  description = "The role (deployed by member-role.yaml) assumed in a finding's account when it is not this one. Empty: findings for other accounts are skipped."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{0,64}$", var.MemberRoleName))
    error_message = "MemberRoleName must match ^[A-Za-z0-9+=,.@_-]{0,64}$ (the template's AllowedPattern)."
  }
}

variable "MemberRoleExternalId" {
  description = "The external id member-role.yaml was deployed with, if any."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([A-Za-z0-9+=,.@:/_-]{2,})?$", var.MemberRoleExternalId)) && length(var.MemberRoleExternalId) <= 1224
    error_message = "MemberRoleExternalId must match ^([A-Za-z0-9+=,.@:/_-]{2,1224})?$ (the template's AllowedPattern)."
  }
}

variable "AllowedAccounts" {
  description = "Comma-separated account ids; if set, findings for other accounts (this one included) are skipped."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([0-9]{12}(,[0-9]{12})*)?$", var.AllowedAccounts))
    error_message = "AllowedAccounts must match ^([0-9]{12}(,[0-9]{12})*)?$ (the template's AllowedPattern)."
  }
}

variable "DeniedAccounts" {
  description = "Comma-separated account ids whose findings are always skipped; wins over AllowedAccounts."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([0-9]{12}(,[0-9]{12})*)?$", var.DeniedAccounts))
    error_message = "DeniedAccounts must match ^([0-9]{12}(,[0-9]{12})*)?$ (the template's AllowedPattern)."
  }
}

variable "QuarantineProfile" {
  description = "Instance-profile name attached to isolated instances (empty for none)."
  type        = string
  default     = ""
}

variable "Forensics" {
  description = "snapshot: before isolating an instance, enable its termination protection, make a shutdown stop it, and snapshot its EBS volumes (tagged with the finding and the instance). A failure there is reported and does not stop the isolation."
  type        = string
  default     = "off"

  validation {
    condition     = contains(["off", "snapshot"], var.Forensics)
    error_message = "Forensics must be one of: off, snapshot."
  }
}

variable "Harden" {
  description = "imdsv2: require IMDSv2 on the finding's instance (and on siblings, or every instance of a role, tagged exfil-responder:harden=imdsv2) before anything else, and report which instances using the role still allow IMDSv1. Applications that only speak IMDSv1 lose their credentials."
  type        = string
  default     = "off"

  validation {
    condition     = contains(["off", "imdsv2"], var.Harden)
    error_message = "Harden must be one of: off, imdsv2."
  }
}

variable "RevokeHoldHours" {
  description = "A release (operation release) removes a role's revocation only this many hours after its cut-off, once every token issued before it has expired (role sessions last at most 12 hours, so 12 at least); earlier only when a release is forced with a reason."
  type        = number
  default     = 12

  validation {
    condition     = var.RevokeHoldHours >= 12 && var.RevokeHoldHours <= 720
    error_message = "RevokeHoldHours must be between 12 and 720."
  }
}

variable "AutoRelease" {
  description = "true: after a containment, an EventBridge Scheduler one-time schedule releases the role once RevokeHoldHours have passed since its cut-off (put off if the role was revoked again since). false: the revocation stays until a person releases it."
  type        = string
  default     = "false"

  validation {
    condition     = contains(["false", "true"], var.AutoRelease)
    error_message = "AutoRelease must be one of: false, true."
  }
}

variable "ChainDepth" {
  description = "How many hops of AssumeRole the walk follows from the stolen key."
  type        = number
  default     = 3

  validation {
    condition     = var.ChainDepth >= 1 && var.ChainDepth <= 5
    error_message = "ChainDepth must be between 1 and 5."
  }
}

variable "ChainFollowUpMinutes" {
  description = "CloudTrail delivers an event about 5 minutes after the call, so the walk is run again this many minutes after the containment (one-time EventBridge Scheduler schedules, deleted once run; at most 4, each 5 to 1440); none for no follow-up walk."
  type        = string
  default     = "15,60"

  validation {
    condition     = can(regex("^(none|([5-9]|[1-9][0-9]|[1-9][0-9]{2}|1[0-3][0-9]{2}|14[0-3][0-9]|1440)(,([5-9]|[1-9][0-9]|[1-9][0-9]{2}|1[0-3][0-9]{2}|14[0-3][0-9]|1440)){0,3})$", var.ChainFollowUpMinutes))
    error_message = "ChainFollowUpMinutes must match ^(none|([5-9]|[1-9][0-9]|[1-9][0-9]{2}|1[0-3][0-9]{2}|14[0-3][0-9]|1440)(,([5-9]|[1-9][0-9]|[1-9][0-9]{2}|1[0-3][0-9]{2}|14[0-3][0-9]|1440)){0,3})$ (the template's AllowedPattern)."
  }
}

variable "VerifyFindings" {
  description = "Fetch each finding from GuardDuty (GetFindings, in the finding's account and region) and act only on what GuardDuty confirms. Turn off only if nothing but EventBridge can invoke the function."
  type        = string
  default     = "true"

  validation {
    condition     = contains(["true", "false"], var.VerifyFindings)
    error_message = "VerifyFindings must be one of: true, false."
  }
}

variable "ArchiveFindings" {
  description = "Archive the finding in GuardDuty after a successful remediation."
  type        = string
  default     = "false"

  validation {
    condition     = contains(["true", "false"], var.ArchiveFindings)
    error_message = "ArchiveFindings must be one of: true, false."
  }
}

variable "SecurityHubFindings" {
  description = "Also take GuardDuty's findings as Security Hub imports them: asff (Security Hub CSPM, \"Security Hub Findings - Imported\"), ocsf (Security Hub, \"Findings Imported V2\"), or none. Only new, active GuardDuty findings of the credential-exfiltration types. Beside GuardDuty's own events each finding is answered twice, the second time with nothing left to do."
  type        = string
  default     = "none"

  validation {
    condition     = contains(["none", "asff", "ocsf"], var.SecurityHubFindings)
    error_message = "SecurityHubFindings must be one of: none, asff, ocsf."
  }
}

variable "SecurityHubAction" {
  description = "Create the Security Hub custom action \"Contain credentials\": the findings an analyst selects with it are sent to the function, each verified and answered on its own, whatever its workflow status."
  type        = string
  default     = "false"

  validation {
    condition     = contains(["true", "false"], var.SecurityHubAction)
    error_message = "SecurityHubAction must be one of: true, false."
  }
}

variable "SecurityHubUpdates" {
  description = "After each response, set the finding's Security Hub workflow (RESOLVED once remediated with nothing left for a person, NOTIFIED while work is pending or failed) with a note of the outcome and the report's id, from this account: deploy in the Security Hub administrator account for members' findings."
  type        = string
  default     = "false"

  validation {
    condition     = contains(["true", "false"], var.SecurityHubUpdates)
    error_message = "SecurityHubUpdates must be one of: true, false."
  }
}

variable "ReadinessSchedule" {
  description = "Before any incident: an EventBridge Scheduler expression, for example cron(0 8 ? * MON *), on which the function runs readiness (what a revocation would do now to every role and instance) and, with NotificationTopicArn, sends its summary there; empty for none."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^((rate|cron)\\(.+\\))?$", var.ReadinessSchedule))
    error_message = "ReadinessSchedule must match ^((rate|cron)\\(.+\\))?$ (the template's AllowedPattern)."
  }
}

variable "ReadinessAccounts" {
  description = "The accounts the readiness schedule assesses (comma-separated, through MemberRoleName); empty for this account alone."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([0-9]{12}(,[0-9]{12}){0,49})?$", var.ReadinessAccounts))
    error_message = "ReadinessAccounts must match ^([0-9]{12}(,[0-9]{12}){0,49})?$ (the template's AllowedPattern)."
  }
}

variable "SuccessTopicArn" {
  description = "Optional SNS topic that receives every successful report (Lambda's on-success destination)."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^(arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+)?$", var.SuccessTopicArn))
    error_message = "SuccessTopicArn must match ^(arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+)?$ (the template's AllowedPattern)."
  }
}

variable "Dashboard" {
  description = "true: a CloudWatch dashboard, <stack>-responder, over the function's metrics (containments, refusals, failures, instances cycled and isolated, time to containment) and its errors."
  type        = string
  default     = "false"

  validation {
    condition     = contains(["true", "false"], var.Dashboard)
    error_message = "Dashboard must be one of: true, false."
  }
}

variable "CycleTimeoutSeconds" {
  description = "Bound on each wait for an instance-profile association to settle (two waits per cycled instance)."
  type        = number
  default     = 60

  validation {
    condition     = var.CycleTimeoutSeconds >= 1 && var.CycleTimeoutSeconds <= 600
    error_message = "CycleTimeoutSeconds must be between 1 and 600."
  }
}

variable "FleetConcurrency" {
  description = "Instances between their first step other than a mark and their attach at once; the next starts as one is attached (measured with make bench; EC2 throttles each action per account and Region, and the function backs off when it does)."
  type        = number
  default     = 50

  validation {
    condition     = var.FleetConcurrency >= 1 && var.FleetConcurrency <= 50
    error_message = "FleetConcurrency must be between 1 and 50."
  }
}

variable "FunctionTimeoutSeconds" {
  description = "Lambda timeout. A cycled instance waits at most 2 x CycleTimeoutSeconds, FleetConcurrency of them between detach and attach at once: keep it above 2 x CycleTimeoutSeconds x (instances per role / FleetConcurrency), with a margin. Each run stops between steps once less than OPERATION_TIMEOUT_MS + 2 s (27 s) is left, and its retry resumes where it stopped."
  type        = number
  default     = 300

  validation {
    condition     = var.FunctionTimeoutSeconds >= 60 && var.FunctionTimeoutSeconds <= 900
    error_message = "FunctionTimeoutSeconds must be between 60 and 900."
  }
}

variable "ReservedConcurrency" {
  description = "Reserved concurrency (empty: none reserved). Reserving keeps the responder runnable when other functions exhaust the account's concurrency; accounts at the minimum unreserved limit cannot reserve any."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([1-9][0-9]{0,3})?$", var.ReservedConcurrency))
    error_message = "ReservedConcurrency must match ^([1-9][0-9]{0,3})?$ (the template's AllowedPattern)."
  }
}

variable "LogRetentionDays" {
  description = "How long the function's logs (every report) are kept; the log group is retained when the stack is deleted."
  type        = number
  default     = 365

  validation {
    condition     = contains([30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.LogRetentionDays)
    error_message = "LogRetentionDays must be one of: 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "LogLevel" {
  description = "Application log level."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["TRACE", "DEBUG", "INFO"], var.LogLevel)
    error_message = "LogLevel must be one of: TRACE, DEBUG, INFO."
  }
}

variable "MetricsNamespace" {
  description = "CloudWatch namespace of the function's own metrics (embedded metric format)."
  type        = string
  default     = "ExfilResponder"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.MetricsNamespace))
    error_message = "MetricsNamespace must match ^[A-Za-z0-9._/#:-]{1,255}$ (the template's AllowedPattern)."
  }
}

variable "Architecture" {
  description = "Lambda architecture; sam build compiles for it."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.Architecture)
    error_message = "Architecture must be one of: arm64, x86_64."
  }
}

variable "PermissionsBoundaryArn" {
  description = "Optional permissions boundary for the function's role, where the organisation requires one."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^(arn:aws[a-z-]*:iam::[0-9]{12}:policy/.+)?$", var.PermissionsBoundaryArn))
    error_message = "PermissionsBoundaryArn must match ^(arn:aws[a-z-]*:iam::[0-9]{12}:policy/.+)?$ (the template's AllowedPattern)."
  }
}
