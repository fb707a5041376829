package sanitize

import (
	"slices"

	"github.com/lifeboat-backup/lifeboat/policies"
)

func cols(kv ...string) policies.TableRules {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return policies.TableRules{Columns: m}
}

var (
	truncate = policies.TableRules{Action: policies.TableTruncate}
	// person is the usual name and contact columns of Magento's customer,
	// quote and order tables.
	addressCols = []string{"firstname", "fake:first_name", "middlename", "null", "lastname", "fake:last_name",
		"company", "fake:company", "street", "fake:street", "city", "fake:city", "region", "fake:region",
		"postcode", "fake:postcode", "telephone", "fake:phone", "fax", "null", "email", "fake:email",
		"vat_id", "fake:vat", "prefix", "null", "suffix", "null"}
	oroAddressCols = []string{"name_prefix", "null", "first_name", "fake:first_name", "middle_name", "null",
		"last_name", "fake:last_name", "name_suffix", "null", "street", "fake:street", "street2", "null", "city", "fake:city",
		"postal_code", "fake:postcode", "organization", "fake:company", "phone", "fake:phone"}
	customerCols = []string{"customer_email", "fake:email", "customer_firstname", "fake:first_name",
		"customer_middlename", "null", "customer_lastname", "fake:last_name", "customer_dob", "null",
		"customer_taxvat", "null", "customer_prefix", "null", "customer_suffix", "null",
		"remote_ip", "fake:ip", "x_forwarded_for", "null", "customer_note", "null"}
)

// presets are table rules by table name (any database). Tables or columns
// a preset names that a snapshot does not have are ignored: schemas differ
// between versions.
var presets = map[string]map[string]policies.TableRules{
	"magento2": {
		"customer_entity": cols("email", "fake:email", "firstname", "fake:first_name", "middlename", "null",
			"lastname", "fake:last_name", "dob", "null", "taxvat", "null", "prefix", "null", "suffix", "null",
			"password_hash", "fixed:", "rp_token", "null", "gender", "null", "note", "null"),
		"customer_address_entity":       cols(addressCols...),
		"customer_grid_flat":            truncate,
		"customer_visitor":              truncate,
		"customer_log":                  truncate,
		"sales_order":                   cols(customerCols...),
		"sales_order_address":           cols(addressCols...),
		"sales_order_grid":              truncate,
		"sales_invoice_grid":            truncate,
		"sales_shipment_grid":           truncate,
		"sales_creditmemo_grid":         truncate,
		"sales_order_payment":           cols("cc_last_4", "null", "cc_owner", "null", "cc_number_enc", "null", "cc_exp_year", "null", "cc_exp_month", "null", "echeck_account_name", "null", "echeck_bank_name", "null", "po_number", "null", "last_trans_id", "hash"),
		"quote":                         cols(customerCols...),
		"quote_address":                 cols(addressCols...),
		"quote_payment":                 cols("cc_last_4", "null", "cc_owner", "null", "cc_number_enc", "null", "po_number", "null"),
		"newsletter_subscriber":         cols("subscriber_email", "fake:email", "subscriber_name", "fake:name", "subscriber_confirm_code", "hash"),
		"newsletter_queue_link":         truncate,
		"newsletter_problem":            truncate,
		"review_detail":                 cols("nickname", "fake:first_name", "title", "fake:text", "detail", "fake:text"),
		"rating_option_vote":            cols("remote_ip", "fake:ip", "remote_ip_long", "null"),
		"admin_user":                    cols("email", "fake:email", "firstname", "fake:first_name", "lastname", "fake:last_name", "username", "fake:username", "password", "fixed:", "rp_token", "null"),
		"admin_user_session":            truncate,
		"oauth_token":                   truncate,
		"email_queue":                   truncate,
		"report_event":                  truncate,
		"report_viewed_product_index":   truncate,
		"report_compared_product_index": truncate,
		"sendfriend_log":                truncate,
		"session":                       truncate,
		"persistent_session":            truncate,
		"login_as_customer":             truncate,
		"password_reset_request_event":  truncate,
		"cache":                         truncate,
		"cache_tag":                     truncate,
	},
	// orocommerce: PostgreSQL table names (any schema).
	"orocommerce": {
		"oro_customer": cols("name", "fake:company"),
		"oro_customer_user": cols("email", "fake:email", "email_lowercase", "fake:email", "username", "fake:email",
			"name_prefix", "null", "first_name", "fake:first_name", "middle_name", "null", "last_name", "fake:last_name",
			"name_suffix", "null", "birthday", "null", "password", "fixed:", "salt", "null", "confirmation_token", "null"),
		"oro_customer_user_address": cols(oroAddressCols...),
		"oro_customer_address":      cols(oroAddressCols...),
		"oro_order":                 cols("customer_notes", "null"),
		"oro_order_address":         cols(oroAddressCols...),
		"oro_checkout_address":      cols(oroAddressCols...),
		"oro_quote_address":         cols(oroAddressCols...),
		"oro_payment_transaction": cols("reference", "hash", "access_identifier", "hash", "access_token", "hash",
			"request", "null", "response", "null", "transaction_options", "null"),
		"oro_user": cols("email", "fake:email", "username", "fake:username", "first_name", "fake:first_name",
			"middle_name", "null", "last_name", "fake:last_name", "phone", "fake:phone", "password", "fixed:", "salt", "null"),
		"oro_email":               truncate,
		"oro_email_body":          truncate,
		"oro_email_address":       truncate,
		"oro_email_recipient":     truncate,
		"oro_audit":               truncate,
		"oro_audit_field":         truncate,
		"oro_session":             truncate,
		"oro_customer_visitor":    truncate,
		"oro_message_queue":       truncate,
		"oro_message_queue_job":   truncate,
		"oro_website_search_text": truncate,
		"oro_logger_log_entry":    truncate,
	},
}

// Presets lists the built-in presets.
func Presets() []string {
	var out []string
	for k := range presets {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
