# The module's own inputs; template.yaml's parameters are in parameters.tf.

variable "stack_name" {
  description = "Name of the CloudFormation stack (the template derives the EventBridge rule and log group names from it)."
  type        = string
  default     = "exfil-responder"

  # The template names its EventBridge rule <stack name>-credential-exfiltration, and a rule's
  # name is at most 64 characters: so at most 40 here, not CloudFormation's 128.
  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9-]{0,39}$", var.stack_name))
    error_message = "The stack_name must start with a letter and hold only letters, digits and hyphens, at most 40 (the template's rule names add 24)."
  }
}

variable "template_url" {
  description = "S3 URL (https://...) of the packaged template: the file `sam package --s3-bucket <bucket> --output-template-file packaged.yaml` writes after `sam build`, uploaded to S3."
  type        = string

  validation {
    condition     = can(regex("^https://", var.template_url))
    error_message = "The template_url must be the https:// URL of the packaged template in S3."
  }
}

variable "tags" {
  description = "Tags for the stack (CloudFormation propagates them to the resources it creates) and for the member-role StackSet."
  type        = map(string)
  default     = {}
}

variable "notification_arns" {
  description = "SNS topic ARNs that receive the stack's CloudFormation events (stack events, not the responder's reports: those go to NotificationTopicArn and SuccessTopicArn)."
  type        = list(string)
  default     = []
}

variable "deploy_member_role" {
  description = "Also deploy member-role.yaml to the member accounts of member_role_organizational_unit_ids as a service-managed StackSet. Set MemberRoleName to the role's name with it."
  type        = bool
  default     = false
}

variable "member_role_stack_set_name" {
  description = "Name of the member-role StackSet."
  type        = string
  default     = "exfil-responder-member"
}

variable "member_role_template_path" {
  description = "Path of member-role.yaml, read with file() and sent as the StackSet's template body. null: the repository's member-role.yaml (../member-role.yaml from this module)."
  type        = string
  default     = null
}

variable "member_role_parameters" {
  description = "member-role.yaml's parameters, over what the module derives: ResponderRoleArn (the stack's ResponderRoleArn output), RoleName (MemberRoleName), ExternalId (MemberRoleExternalId), Forensics, Harden (the same variables), PermissionsBoundaryArn (\"\": the administrator account's boundary is not the members')."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.member_role_parameters) : contains(["ResponderRoleArn", "RoleName", "ExternalId", "Forensics", "Harden", "PermissionsBoundaryArn"], k)])
    error_message = "The member_role_parameters keys must be parameters of member-role.yaml: ResponderRoleArn, RoleName, ExternalId, Forensics, Harden, PermissionsBoundaryArn."
  }
}

variable "member_role_organizational_unit_ids" {
  description = "Organization root or OU ids whose accounts get the member role (never the management account: service-managed StackSets skip it)."
  type        = list(string)
  default     = []
}

variable "call_as" {
  description = "SELF from the organization's management account, DELEGATED_ADMIN from a StackSets delegated administrator account."
  type        = string
  default     = "SELF"

  validation {
    condition     = contains(["SELF", "DELEGATED_ADMIN"], var.call_as)
    error_message = "The call_as must be SELF or DELEGATED_ADMIN."
  }
}

variable "member_role_max_concurrent_percentage" {
  description = "Percentage of accounts the StackSet deploys to at once."
  type        = number
  default     = 25

  validation {
    condition     = var.member_role_max_concurrent_percentage >= 1 && var.member_role_max_concurrent_percentage <= 100
    error_message = "The member_role_max_concurrent_percentage must be between 1 and 100."
  }
}

variable "member_role_failure_tolerance_percentage" {
  description = "Percentage of accounts that may fail before the StackSet stops the operation (0: stop at the first)."
  type        = number
  default     = 0

  validation {
    condition     = var.member_role_failure_tolerance_percentage >= 0 && var.member_role_failure_tolerance_percentage <= 100
    error_message = "The member_role_failure_tolerance_percentage must be between 0 and 100."
  }
}

# Every parameter of template.yaml is a variable of its own name in parameters.tf.
