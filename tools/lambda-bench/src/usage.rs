//! What AWS bills the counted calls by, computed from the calls themselves: DynamoDB on-demand
//! request units, SMS parts, emails sent.
//!
//! DynamoDB: a write unit per started 1 KB of the item written, doubled inside a transaction; a
//! read unit per started 4 KB read strongly consistently, half that eventually consistently,
//! doubled inside a transaction. The size of an item is the lengths of its attribute names plus
//! its values' sizes (the developer guide's rule). An `UpdateItem`, `DeleteItem` or
//! `ConditionCheck` carries no whole item, so it counts as one unit per item: right while items
//! stay under 1 KB, which `max_item_bytes` (the largest item any put wrote) shows.
//!
//! SMS: parts as `landing_core::notify::sms_segments` counts them (what the notify path records).

use serde_json::Value;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    pub write_units: f64,
    pub read_units: f64,
    pub max_item_bytes: u64,
    pub sms: u64,
    pub sms_parts: u64,
    pub emails: u64,
}

impl Usage {
    /// Adds one successful call (`op` as `proxy::operation` names it).
    pub fn add(&mut self, op: &str, request: &[u8], response: &[u8]) {
        match op.split_once('.') {
            Some(("dynamodb", name)) => self.dynamodb(name, request, response),
            Some(("sns", "Publish")) => {
                let message = form_urlencoded::parse(request)
                    .find(|(k, _)| k == "Message")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                self.sms += 1;
                self.sms_parts += u64::from(landing_core::notify::sms_segments(&message));
            }
            Some(("ses", "SendEmail")) => self.emails += 1,
            _ => {}
        }
    }

    fn dynamodb(&mut self, name: &str, request: &[u8], response: &[u8]) {
        let req: Value = serde_json::from_slice(request).unwrap_or(Value::Null);
        let resp: Value = serde_json::from_slice(response).unwrap_or(Value::Null);
        let consistent = req["ConsistentRead"].as_bool().unwrap_or(false);
        match name {
            "PutItem" => self.write_units += self.put(&req["Item"]),
            "UpdateItem" | "DeleteItem" => self.write_units += 1.0,
            "BatchWriteItem" => {
                for requests in req["RequestItems"]
                    .as_object()
                    .into_iter()
                    .flat_map(|m| m.values())
                {
                    for r in requests.as_array().into_iter().flatten() {
                        self.write_units += match r.get("PutRequest") {
                            Some(put) => self.put(&put["Item"]),
                            None => 1.0,
                        };
                    }
                }
            }
            "TransactWriteItems" => {
                for item in req["TransactItems"].as_array().into_iter().flatten() {
                    self.write_units += 2.0
                        * match item.get("Put") {
                            Some(put) => self.put(&put["Item"]),
                            None => 1.0,
                        };
                }
            }
            "GetItem" => self.read_units += read_units(item_bytes(&resp["Item"]), consistent),
            "BatchGetItem" => {
                for items in resp["Responses"]
                    .as_object()
                    .into_iter()
                    .flat_map(|m| m.values())
                {
                    for item in items.as_array().into_iter().flatten() {
                        self.read_units += read_units(item_bytes(item), false);
                    }
                }
            }
            "TransactGetItems" => {
                for r in resp["Responses"].as_array().into_iter().flatten() {
                    self.read_units += 2.0 * read_units(item_bytes(&r["Item"]), true);
                }
            }
            // Billed on the total size of the items read, in one go.
            "Query" | "Scan" => {
                let bytes = resp["Items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(item_bytes)
                    .sum();
                self.read_units += read_units(bytes, consistent);
            }
            _ => {}
        }
    }

    fn put(&mut self, item: &Value) -> f64 {
        let bytes = item_bytes(item);
        self.max_item_bytes = self.max_item_bytes.max(bytes);
        bytes.div_ceil(1024).max(1) as f64
    }
}

fn read_units(bytes: u64, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// An item's billed size: its attribute names and values.
pub fn item_bytes(item: &Value) -> u64 {
    item.as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| name.len() as u64 + value_bytes(value))
        .sum()
}

fn value_bytes(v: &Value) -> u64 {
    let Some((kind, inner)) = v.as_object().and_then(|m| m.iter().next()) else {
        return 0;
    };
    let text = |x: &Value| x.as_str().map_or(0, |s| s.len() as u64);
    // Numbers: about one byte per two significant digits, plus one.
    let number = |x: &Value| text(x).div_ceil(2) + 1;
    // Binary arrives base64-encoded.
    let binary = |x: &Value| text(x) * 3 / 4;
    let each =
        |f: &dyn Fn(&Value) -> u64| inner.as_array().into_iter().flatten().map(f).sum::<u64>();
    match kind.as_str() {
        "S" => text(inner),
        "N" => number(inner),
        "B" => binary(inner),
        "BOOL" | "NULL" => 1,
        "SS" => each(&text),
        "NS" => each(&number),
        "BS" => each(&binary),
        "L" => 3 + each(&|x| 1 + value_bytes(x)),
        "M" => {
            3 + inner
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, x)| 1 + k.len() as u64 + value_bytes(x))
                .sum::<u64>()
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_transactional_put_costs_two_units_per_started_kilobyte() {
        let mut u = Usage::default();
        let small = json!({"pk": {"S": "lead#1"}, "n": {"N": "12"}});
        let big = json!({"pk": {"S": "x".repeat(1500)}});
        let req = json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": small}},
            {"Put": {"TableName": "t", "Item": big}},
            {"ConditionCheck": {"TableName": "t"}},
        ]});
        u.add(
            "dynamodb.TransactWriteItems",
            req.to_string().as_bytes(),
            b"{}",
        );
        assert_eq!(u.write_units, 2.0 + 4.0 + 2.0);
        assert_eq!(u.max_item_bytes, 2 + 1500);
    }

    #[test]
    fn reads_are_billed_by_started_four_kilobytes_half_when_eventual() {
        let mut u = Usage::default();
        let item = json!({"pk": {"S": "x".repeat(5000)}});
        let resp = json!({"Items": [item, {"pk": {"S": "y"}}]});
        u.add("dynamodb.Query", b"{}", resp.to_string().as_bytes());
        assert_eq!(u.read_units, 1.0);
        let resp = json!({"Item": {"pk": {"S": "y"}}});
        u.add(
            "dynamodb.GetItem",
            br#"{"ConsistentRead": true}"#,
            resp.to_string().as_bytes(),
        );
        assert_eq!(u.read_units, 2.0);
    }

    #[test]
    fn an_sms_publish_is_counted_with_its_parts() {
        let mut u = Usage::default();
        let body = format!(
            "Action=Publish&PhoneNumber=%2B77010001234&Message={}",
            form_urlencoded::byte_serialize("Здравствуйте! ".repeat(6).as_bytes())
                .collect::<String>()
        );
        u.add("sns.Publish", body.as_bytes(), b"");
        u.add("ses.SendEmail", b"{}", b"{}");
        assert_eq!((u.sms, u.sms_parts, u.emails), (1, 2, 1));
    }
}
