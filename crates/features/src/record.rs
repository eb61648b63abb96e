//! Raw input records exactly as upstream sends them: every field an optional
//! string. These are the seed API's JSON objects and the proto messages'
//! common ground; nothing here is parsed or validated yet (see [`crate::parse`]).

use serde::{Deserialize, Serialize};

/// A travel budget as sent by upstream. Field names are the seed API's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawBudget {
    pub budget_id: Option<String>,
    pub budget_price_budget: Option<String>,
    pub travel_vendor_receipts: Option<String>,
    pub purchase_vendor_receipts: Option<String>,
    pub budget_type_budget: Option<String>,
    pub generated_at_budget: Option<String>,
    pub start_datetime_trips: Option<String>,
    pub end_datetime_trips: Option<String>,
    pub actual_cost_budget: Option<String>,
}

/// An expense line item as sent by upstream. Field names are the seed API's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawLineItem {
    pub itemization_id: Option<String>,
    pub expensed_amount_itemization: Option<String>,
    pub expense_type_name_itemization: Option<String>,
    pub transaction_date_itemization: Option<String>,
    pub expense_category_itemization: Option<String>,
    pub vendor_name_expense: Option<String>,
    pub expense_type_name_expense: Option<String>,
    pub expense_category_expense: Option<String>,
}

/// A request in the seed's shape: the budgets and the line items to match
/// against them. Every budget is paired with every line item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawRequest {
    pub budgets: Vec<RawBudget>,
    pub all_user_expense_lineitems: Vec<RawLineItem>,
}
