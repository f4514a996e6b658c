-- The operating policy (運用ポリシー) a user accepted: the version (a digest of the policy's
-- text, see server/src/config.rs) and when. A deployment with a policy asks every user whose
-- accepted version differs from the current one to accept it before anything else.
alter table app_user add column accepted_policy_version text;
alter table app_user add column accepted_policy_at bigint;
