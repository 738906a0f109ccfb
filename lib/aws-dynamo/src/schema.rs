//! The tables as the crate documentation describes them, for tests and dev stacks (the SAM
//! template declares the same for deployments).

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus,
    TimeToLiveSpecification,
};

use crate::Tables;
use crate::crm::CRM_PENDING_INDEX;
use crate::errors::service_code;
use crate::inspect::{BY_DAY_INDEX, BY_EMAIL_INDEX, BY_PHONE_INDEX};
use crate::notifications::{BY_LEAD_INDEX, DUE_INDEX};

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("DynamoDB refused the table definition")]
    Aws(#[source] Box<aws_sdk_dynamodb::Error>),
    #[error("a table definition is incomplete")]
    Build(#[from] aws_sdk_dynamodb::error::BuildError),
    #[error("table {0} did not become ACTIVE in time")]
    NotActive(String),
}

impl From<aws_sdk_dynamodb::Error> for SchemaError {
    fn from(e: aws_sdk_dynamodb::Error) -> Self {
        SchemaError::Aws(Box::new(e))
    }
}

fn attr(name: &str) -> Result<AttributeDefinition, SchemaError> {
    Ok(AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()?)
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, SchemaError> {
    Ok(KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()?)
}

fn index(
    name: &str,
    hash: &str,
    range: Option<&str>,
    projection: ProjectionType,
) -> Result<GlobalSecondaryIndex, SchemaError> {
    let mut keys = vec![key(hash, KeyType::Hash)?];
    if let Some(r) = range {
        keys.push(key(r, KeyType::Range)?);
    }
    Ok(GlobalSecondaryIndex::builder()
        .index_name(name)
        .set_key_schema(Some(keys))
        .projection(Projection::builder().projection_type(projection).build())
        .build()?)
}

/// One table: `pk` (a string) is its partition key, `extra` the other key attributes of its
/// indexes.
async fn create(
    client: &Client,
    name: &str,
    pk: &str,
    extra: &[&str],
    indexes: Vec<GlobalSecondaryIndex>,
    stream: Option<StreamViewType>,
) -> Result<(), SchemaError> {
    let mut defs = vec![attr(pk)?];
    for a in extra {
        defs.push(attr(a)?);
    }
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(defs))
        .key_schema(key(pk, KeyType::Hash)?);
    if !indexes.is_empty() {
        req = req.set_global_secondary_indexes(Some(indexes));
    }
    if let Some(view) = stream {
        req = req.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(view)
                .build()?,
        );
    }
    match req.send().await {
        Ok(_) => {}
        // Already there (a dev stack created before): keep it.
        Err(e) if service_code(&e) == Some("ResourceInUseException") => {}
        Err(e) => return Err(aws_sdk_dynamodb::Error::from(e).into()),
    }
    for _ in 0..600 {
        let d = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(aws_sdk_dynamodb::Error::from)?;
        if d.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(SchemaError::NotActive(name.to_owned()))
}

/// Creates the seven tables with their keys, indexes, the leads stream (`NEW_IMAGE`) and the
/// idempotency and quota TTLs, and waits until they are `ACTIVE`. Tables that already exist are left as
/// they are.
pub async fn create_tables(client: &Client, tables: &Tables) -> Result<(), SchemaError> {
    create(
        client,
        &tables.leads,
        "id",
        &[
            "crm_pending",
            "created_at",
            "created_day",
            "phone",
            "email_key",
        ],
        vec![
            index(
                CRM_PENDING_INDEX,
                "crm_pending",
                Some("created_at"),
                ProjectionType::KeysOnly,
            )?,
            index(
                BY_DAY_INDEX,
                "created_day",
                Some("created_at"),
                ProjectionType::KeysOnly,
            )?,
            index(
                BY_PHONE_INDEX,
                "phone",
                Some("created_at"),
                ProjectionType::KeysOnly,
            )?,
            index(
                BY_EMAIL_INDEX,
                "email_key",
                Some("created_at"),
                ProjectionType::KeysOnly,
            )?,
        ],
        Some(StreamViewType::NewImage),
    )
    .await?;
    create(
        client,
        &tables.notifications,
        "id",
        &["lead_id", "due_shard", "due_at", "lead_day"],
        vec![
            index(BY_LEAD_INDEX, "lead_id", None, ProjectionType::All)?,
            index(DUE_INDEX, "due_shard", Some("due_at"), ProjectionType::All)?,
            index(BY_DAY_INDEX, "lead_day", None, ProjectionType::KeysOnly)?,
        ],
        None,
    )
    .await?;
    create(client, &tables.tracking, "person_key", &[], vec![], None).await?;
    create(client, &tables.idempotency, "key", &[], vec![], None).await?;
    create(client, &tables.tokens, "id", &[], vec![], None).await?;
    create(client, &tables.quotas, "key", &[], vec![], None).await?;
    create(client, &tables.suppression, "email", &[], vec![], None).await?;
    for table in [&tables.idempotency, &tables.quotas] {
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name("ttl")
                    .build()?,
            )
            .send()
            .await
            .map_err(aws_sdk_dynamodb::Error::from)?;
    }
    Ok(())
}
