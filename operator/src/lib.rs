//! Taxiway's Kubernetes operator: turns `TaxiiService` and `TaxiiCollection` resources
//! into running TAXII servers (a rendered config ConfigMap, a credentials Secret, a
//! Deployment, a Service, a PVC and optionally an Ingress).
//!
//! - [`crd`]: the custom resources and their generated CRDs;
//! - [`reconcile`]: the reconcilers (dereference → validate → build → apply → status);
//! - [`controller`]: the watches that trigger them;
//! - [`lease`], [`admin`], [`metrics`], [`run`]: running as a highly available service.

pub mod admin;
pub mod conditions;
pub mod controller;
pub mod crd;
pub mod credentials;
pub mod lease;
pub mod metrics;
pub mod names;
pub mod reconcile;
pub mod run;
pub mod xsoar;
