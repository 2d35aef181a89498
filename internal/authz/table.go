package authz

import (
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/pdpb"
	"github.com/shaledb/shale/proto/transportpb"
)

// This file is the classification table: every gRPC method, HTTP route,
// Thrift gateway method and SQL statement kind, and who may call it
// (docs/security.md, "Users, roles and authorization", explains each
// class). Anything missing is refused (Unclassified); the tests fail on
// a gRPC method missing here.

// GRPC classifies every gRPC method by its full name.
var GRPC = map[string]Rule{
	// The tablet data API: per table (per key on the raw table).
	kvpb.Tablet_Get_FullMethodName:                {DataRead, rowTarget},
	kvpb.Tablet_Scan_FullMethodName:               {DataRead, scanTarget},
	kvpb.Tablet_MutateRow_FullMethodName:          {DataWrite, rowTarget},
	kvpb.Tablet_CheckAndMutateRow_FullMethodName:  {DataWrite, rowTarget},
	kvpb.Tablet_ReadModifyWriteRow_FullMethodName: {DataWrite, rowTarget},
	kvpb.Tablet_BatchMutate_FullMethodName:        {DataWrite, batchTarget},
	// Bulk import: staging names a tablet, ingesting names the table. Key
	// prefix grants do not cover ingest (the file's keys are opaque here).
	kvpb.Tablet_UploadSST_FullMethodName: {DataWrite, tabletTarget},
	kvpb.Tablet_IngestSST_FullMethodName: {DataWrite, tableTarget},
	// Backup: a table's cells as SST files, a read of the whole table (the
	// store clamps the range to the named table).
	kvpb.Tablet_Export_FullMethodName: {DataRead, tableTarget},
	// A replica fetching a staged file from a peer store.
	kvpb.Tablet_FetchStagedSST_FullMethodName: {Class: Internal},
	// PD drives these; people do through PD (operators).
	kvpb.Tablet_PutTableSchema_FullMethodName:  {Class: Internal},
	kvpb.Tablet_BootstrapTablet_FullMethodName: {Class: Internal},
	kvpb.Tablet_SplitTablet_FullMethodName:     {Class: ClusterAdmin},
	kvpb.Tablet_TransferLeader_FullMethodName:  {Class: ClusterAdmin},
	kvpb.Tablet_ChangeReplicas_FullMethodName:  {Class: ClusterAdmin},
	kvpb.Tablet_MergeTablets_FullMethodName:    {Class: ClusterAdmin},
	kvpb.Tablet_TabletStatus_FullMethodName:    {Class: ClusterAdmin},
	// `shale ctl check`: a consistency check of one tablet, now.
	kvpb.Tablet_CheckTablet_FullMethodName: {Class: ClusterAdmin},

	// Raft traffic between stores (and between PD members).
	transportpb.RaftTransport_Send_FullMethodName:     {Class: Internal},
	transportpb.RaftTransport_Snapshot_FullMethodName: {Class: Internal},
	// Consistency checks: a leader collects its replicas' hashes; a
	// replica that found its data corrupt tells its leader.
	transportpb.RaftTransport_CollectChecksum_FullMethodName:  {Class: Internal},
	transportpb.RaftTransport_ReportBadReplica_FullMethodName: {Class: Internal},

	// The placement driver.
	pdpb.PD_GetMembers_FullMethodName:           {Class: Authenticated},
	pdpb.PD_RegisterStore_FullMethodName:        {Class: Internal},
	pdpb.PD_StoreHeartbeat_FullMethodName:       {Class: Internal},
	pdpb.PD_TabletHeartbeat_FullMethodName:      {Class: Internal},
	pdpb.PD_ReportSplit_FullMethodName:          {Class: Internal},
	pdpb.PD_AllocID_FullMethodName:              {Class: Internal},
	pdpb.PD_GetAuth_FullMethodName:              {Class: Internal}, // holds password hashes
	pdpb.PD_GetTablet_FullMethodName:            {Class: Authenticated},
	pdpb.PD_GetTabletByID_FullMethodName:        {Class: Authenticated},
	pdpb.PD_ScanTablets_FullMethodName:          {Class: Authenticated},
	pdpb.PD_GetStore_FullMethodName:             {Class: Authenticated},
	pdpb.PD_ListStores_FullMethodName:           {Class: Authenticated},
	pdpb.PD_GetTimestamp_FullMethodName:         {Class: Authenticated},
	pdpb.PD_GetTable_FullMethodName:             {Class: Authenticated},
	pdpb.PD_ListTables_FullMethodName:           {Class: Authenticated},
	pdpb.PD_SetSQLSchema_FullMethodName:         {TableAdmin, tableNameTarget},
	pdpb.PD_ModifyColumnFamilies_FullMethodName: {TableAdmin, tableNameTarget},
	// The importer pre-splits the tables it writes.
	pdpb.PD_SplitTablets_FullMethodName:  {DataWrite, splitKeysTarget},
	pdpb.PD_CreateTable_FullMethodName:   {Class: ClusterAdmin},
	pdpb.PD_DropTable_FullMethodName:     {Class: ClusterAdmin},
	pdpb.PD_GetConfig_FullMethodName:     {Class: ClusterAdmin},
	pdpb.PD_SetConfig_FullMethodName:     {Class: ClusterAdmin},
	pdpb.PD_ListOperators_FullMethodName: {Class: ClusterAdmin},
	pdpb.PD_AddOperator_FullMethodName:   {Class: ClusterAdmin},
	pdpb.PD_DrainStore_FullMethodName:    {Class: ClusterAdmin},
	pdpb.PD_CreateUser_FullMethodName:    {Class: ClusterAdmin},
	pdpb.PD_DropUser_FullMethodName:      {Class: ClusterAdmin},
	pdpb.PD_SetPassword_FullMethodName:   {Class: ClusterAdmin},
	pdpb.PD_Grant_FullMethodName:         {Class: ClusterAdmin},
	pdpb.PD_Revoke_FullMethodName:        {Class: ClusterAdmin},
	pdpb.PD_ListAuth_FullMethodName:      {Class: ClusterAdmin},
	// Scheduling controls of `shale ctl` (docs/ctl.md).
	pdpb.PD_SetStoreLabels_FullMethodName: {Class: ClusterAdmin},
	pdpb.PD_SetStoreLimit_FullMethodName:  {Class: ClusterAdmin},
	pdpb.PD_ListSchedulers_FullMethodName: {Class: ClusterAdmin},
	pdpb.PD_PauseScheduler_FullMethodName: {Class: ClusterAdmin},
	pdpb.PD_RemoveOperator_FullMethodName: {Class: ClusterAdmin},
	// GC safe points: reading is harmless; registering one pins every
	// version of the cluster (disk), so it is an administrator's (backup).
	pdpb.PD_GetGCSafePoint_FullMethodName:         {Class: Authenticated},
	pdpb.PD_UpdateServiceSafePoint_FullMethodName: {Class: ClusterAdmin},
	// Quotas (`shale ctl quota`, internal/quota): setting one throttles
	// every user of a table; listing names users.
	pdpb.PD_SetQuota_FullMethodName:    {Class: ClusterAdmin},
	pdpb.PD_RemoveQuota_FullMethodName: {Class: ClusterAdmin},
	pdpb.PD_ListQuotas_FullMethodName:  {Class: ClusterAdmin},
}

// HTTP classifies every HTTP route by its http.ServeMux pattern, on PD's
// and the tablet servers' status ports.
var HTTP = map[string]Class{
	"/healthz":                 Public,
	"/readyz":                  Public,
	"/metrics":                 Authenticated,
	"GET /pd/api/v1/members":   Authenticated,
	"GET /pd/api/v1/health":    Public,
	"GET /pd/api/v1/stores":    Authenticated,
	"GET /pd/api/v1/tablets":   Authenticated,
	"GET /pd/api/v1/tables":    Authenticated,
	"GET /pd/api/v1/operators": ClusterAdmin,
	"GET /pd/api/v1/config":    ClusterAdmin,
	"POST /pd/api/v1/config":   ClusterAdmin,
	"PUT /pd/api/v1/config":    ClusterAdmin,
	// The web console (docs/console.md): pages and their JSON; operators
	// and configuration need cluster admin, as on /pd/api.
	"GET /console/":              Authenticated,
	"GET /console":               Authenticated,
	"GET /console/api/overview":  Authenticated,
	"GET /console/api/tables":    Authenticated,
	"GET /console/api/tablets":   Authenticated,
	"GET /console/api/hot":       Authenticated,
	"GET /console/api/heatmap":   Authenticated,
	"GET /console/api/operators": ClusterAdmin,
	"GET /console/api/config":    ClusterAdmin,
	"/debug/pprof/":              ClusterAdmin,
	"/debug/pprof/cmdline":       ClusterAdmin,
	"/debug/pprof/profile":       ClusterAdmin,
	"/debug/pprof/symbol":        ClusterAdmin,
	"/debug/pprof/trace":         ClusterAdmin,
	// A tablet server's admission control (docs/qos.md): its settings and
	// load are an operator's, and changing them is cluster admin.
	"GET /admission": ClusterAdmin,
	"PUT /admission": ClusterAdmin,
}

// Thrift classifies the HBase Thrift gateway's methods (their wire
// names), those of Thrift2's THBaseService and Thrift1's Hbase (a name in
// both has one class). The gateway checks the per-table classes with the table the
// call names (CheckThrift); scanner calls are bound to the table checked
// when the scanner was opened.
var Thrift = map[string]Class{
	"exists": DataRead, "existsAll": DataRead, "get": DataRead, "getMultiple": DataRead,
	"openScanner": DataRead, "getScannerResults": DataRead,
	"getScannerRows": Authenticated, "closeScanner": Authenticated,
	"put": DataWrite, "putMultiple": DataWrite, "deleteSingle": DataWrite, "deleteMultiple": DataWrite,
	"checkAndPut": DataWrite, "checkAndDelete": DataWrite, "checkAndMutate": DataWrite,
	"mutateRow": DataWrite, "increment": DataWrite, "append": DataWrite,
	"getRegionLocation": Authenticated, "getAllRegionLocations": Authenticated,
	"getTableDescriptor": Authenticated, "getTableDescriptors": Authenticated, "tableExists": Authenticated,
	"getTableDescriptorsByPattern": Authenticated, "getTableDescriptorsByNamespace": Authenticated,
	"getTableNamesByPattern": Authenticated, "getTableNamesByNamespace": Authenticated,
	"isTableEnabled": Authenticated, "isTableDisabled": Authenticated, "isTableAvailable": Authenticated,
	"getThriftServerType": Public,
	"createTable":         ClusterAdmin, "deleteTable": ClusterAdmin, "truncateTable": ClusterAdmin,
	"enableTable": ClusterAdmin, "disableTable": ClusterAdmin,
	"createNamespace": ClusterAdmin, "modifyNamespace": ClusterAdmin, "deleteNamespace": ClusterAdmin,
	"getNamespaceDescriptor": Authenticated, "listNamespaceDescriptors": Authenticated, "listNamespaces": Authenticated,
	// Thrift1 (Hbase) only.
	"getTableNames": Authenticated, "getTableNamesWithIsTableEnabled": Authenticated,
	"getColumnDescriptors": Authenticated, "getTableRegions": Authenticated,
	"getVer": DataRead, "getVerTs": DataRead, "getRow": DataRead, "getRowWithColumns": DataRead,
	"getRowTs": DataRead, "getRowWithColumnsTs": DataRead, "getRows": DataRead, "getRowsWithColumns": DataRead,
	"getRowsTs": DataRead, "getRowsWithColumnsTs": DataRead,
	"scannerOpenWithScan": DataRead, "scannerOpen": DataRead, "scannerOpenWithStop": DataRead,
	"scannerOpenWithPrefix": DataRead, "scannerOpenTs": DataRead, "scannerOpenWithStopTs": DataRead,
	"scannerGet": Authenticated, "scannerGetList": Authenticated, "scannerClose": Authenticated,
	"mutateRowTs": DataWrite, "mutateRows": DataWrite, "mutateRowsTs": DataWrite, "atomicIncrement": DataWrite,
	"deleteAll": DataWrite, "deleteAllTs": DataWrite, "deleteAllRow": DataWrite, "deleteAllRowTs": DataWrite,
	"incrementRows": DataWrite,
	// Column families, online (checked on the table they name).
	"addColumnFamily": TableAdmin, "deleteColumnFamily": TableAdmin, "modifyColumnFamily": TableAdmin, "modifyTable": TableAdmin,
}

// SQL classifies sql-lite's statement kinds (the names sql-lite reports:
// the parser's statement type without "Stmt", upper case). A statement
// is checked against every table it reads or writes.
var SQL = map[string]Class{
	"SELECT": DataRead, "EXPLAIN": DataRead,
	"INSERT": DataWrite, "UPDATE": DataWrite, "DELETE": DataWrite,
	"BEGIN": Authenticated, "COMMIT": Authenticated, "ROLLBACK": Authenticated, "SHOW": Authenticated,
	"ALTERTABLE":  TableAdmin,
	"CREATETABLE": ClusterAdmin, "DROPTABLE": ClusterAdmin,
	"CREATEUSER": ClusterAdmin, "DROPUSER": ClusterAdmin, "ALTERUSER": ClusterAdmin, "SETPWD": ClusterAdmin,
	"GRANT": ClusterAdmin, "REVOKE": ClusterAdmin, "GRANTROLE": ClusterAdmin, "REVOKEROLE": ClusterAdmin,
}
