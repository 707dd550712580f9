# exfil-responder as Terraform: the packaged SAM template as one CloudFormation stack, and,
# optionally, member-role.yaml as a service-managed StackSet over the organisation's OUs. The IAM
# policies stay in the templates (where `make validate` checks them against the code); this module
# only passes parameters.

locals {
  member_role_template_path = coalesce(var.member_role_template_path, "${path.module}/../member-role.yaml")

  # Every parameter of member-role.yaml must be set: the provider plans a change on every apply
  # for a StackSet parameter left to its template default. Derived from the responder's variables
  # so the two stay in step; member_role_parameters overrides.
  member_role_parameters = merge(
    {
      ResponderRoleArn       = aws_cloudformation_stack.responder.outputs["ResponderRoleArn"]
      RoleName               = var.MemberRoleName
      ExternalId             = var.MemberRoleExternalId
      Forensics              = var.Forensics
      Harden                 = var.Harden
      PermissionsBoundaryArn = ""
    },
    var.member_role_parameters,
  )
}

resource "aws_cloudformation_stack" "responder" {
  #checkov:skip=CKV_AWS_124: Stack events go to notification_arns when given, none by default: terraform apply waits on the stack and reports its failure itself, and the responder's own failures alarm to AlarmTopicArn.
  name         = var.stack_name
  template_url = var.template_url

  # The template is a SAM template (Transform: AWS::Serverless-2016-10-31): CAPABILITY_AUTO_EXPAND.
  # Its IAM roles have generated names (no RoleName): CAPABILITY_IAM, not CAPABILITY_NAMED_IAM.
  capabilities = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]

  # Every parameter of template.yaml, from the variable of the same name. CloudFormation's
  # parameter values are strings: the Number parameters go through tostring().
  parameters = {
    DryRun                 = var.DryRun
    DefaultAction          = var.DefaultAction
    ActionTagKey           = var.ActionTagKey
    ProtectedRoles         = var.ProtectedRoles
    Chain                  = var.Chain
    NotificationTopicArn   = var.NotificationTopicArn
    AlarmTopicArn          = var.AlarmTopicArn
    MemberRoleName         = var.MemberRoleName
    MemberRoleExternalId   = var.MemberRoleExternalId
    AllowedAccounts        = var.AllowedAccounts
    DeniedAccounts         = var.DeniedAccounts
    QuarantineProfile      = var.QuarantineProfile
    Forensics              = var.Forensics
    Harden                 = var.Harden
    RevokeHoldHours        = tostring(var.RevokeHoldHours)
    AutoRelease            = var.AutoRelease
    ChainDepth             = tostring(var.ChainDepth)
    ChainFollowUpMinutes   = var.ChainFollowUpMinutes
    VerifyFindings         = var.VerifyFindings
    ArchiveFindings        = var.ArchiveFindings
    SecurityHubFindings    = var.SecurityHubFindings
    SecurityHubAction      = var.SecurityHubAction
    SecurityHubUpdates     = var.SecurityHubUpdates
    ReadinessSchedule      = var.ReadinessSchedule
    ReadinessAccounts      = var.ReadinessAccounts
    SuccessTopicArn        = var.SuccessTopicArn
    Dashboard              = var.Dashboard
    CycleTimeoutSeconds    = tostring(var.CycleTimeoutSeconds)
    FleetConcurrency       = tostring(var.FleetConcurrency)
    FunctionTimeoutSeconds = tostring(var.FunctionTimeoutSeconds)
    ReservedConcurrency    = var.ReservedConcurrency
    LogRetentionDays       = tostring(var.LogRetentionDays)
    LogLevel               = var.LogLevel
    MetricsNamespace       = var.MetricsNamespace
    Architecture           = var.Architecture
    PermissionsBoundaryArn = var.PermissionsBoundaryArn
  }

  notification_arns = var.notification_arns
  tags              = var.tags
}

resource "aws_cloudformation_stack_set" "member_role" {
  count = var.deploy_member_role ? 1 : 0

  name             = var.member_role_stack_set_name
  description      = "exfil-responder's member role, in every member account of the target OUs."
  permission_model = "SERVICE_MANAGED"
  call_as          = var.call_as
  template_body    = file(local.member_role_template_path)
  # member-role.yaml names its role (RoleName): CAPABILITY_NAMED_IAM.
  capabilities = ["CAPABILITY_NAMED_IAM"]
  parameters   = local.member_role_parameters
  tags         = var.tags

  # New accounts in the target OUs get the role; an account that leaves loses it.
  auto_deployment {
    enabled                          = true
    retain_stacks_on_account_removal = false
  }

  # Auto-deployments and this module's updates queue behind each other instead of failing.
  managed_execution {
    active = true
  }

  operation_preferences {
    failure_tolerance_percentage = var.member_role_failure_tolerance_percentage
    max_concurrent_percentage    = var.member_role_max_concurrent_percentage
  }

  lifecycle {
    # AWS fills in the service-linked administration role of a SERVICE_MANAGED StackSet, which
    # older providers then plan to remove on every apply (hashicorp/terraform-provider-aws#23464).
    ignore_changes = [administration_role_arn]

    precondition {
      condition     = var.MemberRoleName != "" && local.member_role_parameters["RoleName"] == var.MemberRoleName
      error_message = "With deploy_member_role, set MemberRoleName (the responder assumes the role by that name), and do not give member_role_parameters a different RoleName."
    }
    precondition {
      condition     = local.member_role_parameters["ExternalId"] == var.MemberRoleExternalId
      error_message = "The member role's ExternalId must be MemberRoleExternalId: the responder presents that one."
    }
  }
}

resource "aws_cloudformation_stack_set_instance" "member_role" {
  count = var.deploy_member_role ? 1 : 0

  stack_set_name = aws_cloudformation_stack_set.member_role[0].name
  call_as        = var.call_as

  deployment_targets {
    organizational_unit_ids = var.member_role_organizational_unit_ids
  }

  # No region argument: the instance goes to the provider's region, where the StackSet lives. One
  # region is enough because IAM is global: the role is the same in every region. Use a region every
  # member account has enabled (not an opt-in one). The argument is `region` up to provider 5.x and
  # `stack_set_instance_region` from 6.0, so leaving it out works with both.

  operation_preferences {
    failure_tolerance_percentage = var.member_role_failure_tolerance_percentage
    max_concurrent_percentage    = var.member_role_max_concurrent_percentage
  }

  lifecycle {
    precondition {
      condition     = length(var.member_role_organizational_unit_ids) > 0
      error_message = "With deploy_member_role, give member_role_organizational_unit_ids (the organization root or OU ids)."
    }
  }
}
