pub async fn demo(_d: std::time::Duration, _n: Option<String>) -> u8 { 2 }
