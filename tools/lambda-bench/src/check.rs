//! What a correct answer of each function looks like; intake answers also yield the lead ids
//! that `notify` and `crm-sync` are then invoked with.

use serde_json::Value;

/// The problem with one answer, if any.
pub fn problem(function: &str, answer: &Value) -> Option<String> {
    let ok = match function {
        "proftest" | "submit" => lead_id(answer).is_some(),
        "notify" => answer["sent"] == 2,
        "crm-sync" => answer["batchItemFailures"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "sweeper" => answer.get("notificationsSent").is_some(),
        _ => false,
    };
    (!ok).then(|| format!("{function}: unexpected answer {answer}"))
}

pub fn is_intake(function: &str) -> bool {
    matches!(function, "proftest" | "submit")
}

/// The lead id of an accepted (`201`) intake answer.
pub fn lead_id(answer: &Value) -> Option<String> {
    if answer["statusCode"] != 201 {
        return None;
    }
    let body: Value = serde_json::from_str(answer["body"].as_str()?).ok()?;
    body["leadId"].as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn intake_answers_carry_the_lead() {
        let ok = json!({"statusCode": 201, "body": "{\"leadId\":\"abc\"}"});
        assert_eq!(lead_id(&ok).as_deref(), Some("abc"));
        assert!(problem("proftest", &ok).is_none());
        assert!(problem("submit", &json!({"statusCode": 422, "body": "{}"})).is_some());
        assert!(problem("notify", &json!({"sent": 2})).is_none());
        assert!(problem("crm-sync", &json!({"batchItemFailures": []})).is_none());
    }
}
