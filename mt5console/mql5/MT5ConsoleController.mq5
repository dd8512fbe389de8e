//+------------------------------------------------------------------+
//| MT5ConsoleController.mq5                                         |
//| mt5console's hands inside the terminal: the MetaTrader5 Python   |
//| API cannot put an EA on a chart, so this EA does it on request.  |
//|                                                                  |
//| Attach it ONCE to any chart, with "Allow Algo Trading" ticked    |
//| (EAs it starts can never trade more than it may itself).         |
//|                                                                  |
//| Protocol (files in the common Files folder, MT5Console\):        |
//|   <id>.cmd  written by mt5console: key=value lines (UTF-8, CRLF) |
//|             id, action (run|stop), ea, symbol, timeframe,        |
//|             period (ENUM_TIMEFRAMES), template, data_path        |
//|   <id>.ans  written here: id, status (ok|error), message, chart  |
//| run:  open a chart of symbol/period, apply the template that     |
//|       carries the EA, answer once the EA is running on it.       |
//| stop: close the charts running the EA (of one symbol if given).  |
//+------------------------------------------------------------------+
#property copyright   "mt5console"
#property version     "1.00"
#property description "Starts and stops EAs on charts on mt5console's commands (run / stop jobs)."

input int InpPollMilliseconds    = 500; // how often the command folder is read (ms)
input int InpStartTimeoutSeconds = 15;  // how long a started EA may take to appear on its chart (s)

#define CONTROL_FOLDER "MT5Console\\"
#define COMMAND_SUFFIX ".cmd"

// Runs whose template was applied, one entry per index in these arrays. ChartApplyTemplate only
// queues the template, so the answer waits until the EA is seen on the chart (or the deadline).
string   g_pending_ids[];
long     g_pending_charts[];
string   g_pending_eas[];
datetime g_pending_deadlines[];

//+------------------------------------------------------------------+
int OnInit()
  {
   FolderCreate("MT5Console", FILE_COMMON);
   if(!EventSetMillisecondTimer((int)MathMax(100, InpPollMilliseconds)))
     {
      PrintFormat("MT5ConsoleController: cannot start its timer (error %d)", GetLastError());
      return(INIT_FAILED);
     }
   if(!MQLInfoInteger(MQL_TRADE_ALLOWED))
      Print("MT5ConsoleController: Allow Algo Trading is OFF for this EA: the EAs it starts will not trade");
   PrintFormat("MT5ConsoleController: watching %s in the common Files folder for terminal %s",
               CONTROL_FOLDER, TerminalInfoString(TERMINAL_DATA_PATH));
   return(INIT_SUCCEEDED);
  }

//+------------------------------------------------------------------+
void OnDeinit(const int reason)
  {
   EventKillTimer();
  }

//+------------------------------------------------------------------+
void OnTick()
  {
  }

//+------------------------------------------------------------------+
void OnTimer()
  {
   CheckPending();
   ReadCommands();
  }

//+------------------------------------------------------------------+
//| The commands waiting in the folder                               |
//+------------------------------------------------------------------+
void ReadCommands()
  {
   string name;
   string names[];
   long search = FileFindFirst(CONTROL_FOLDER + "*" + COMMAND_SUFFIX, name, FILE_COMMON);
   if(search == INVALID_HANDLE)
      return;
   do
     {
      // "*.cmd" may also match longer extensions on Windows: keep exact ".cmd" names only.
      int length = StringLen(name);
      if(length > 4 && StringSubstr(name, length - 4) == COMMAND_SUFFIX)
        {
         int count = ArraySize(names);
         ArrayResize(names, count + 1);
         names[count] = name;
        }
     }
   while(FileFindNext(search, name));
   FileFindClose(search);
   for(int i = 0; i < ArraySize(names); i++)
      HandleCommand(CONTROL_FOLDER + names[i]);
  }

//+------------------------------------------------------------------+
void HandleCommand(const string path)
  {
   string keys[];
   string values[];
   if(!ReadFields(path, keys, values))
      return; // locked for a moment: the next timer tick reads it
   string data_path = Field(keys, values, "data_path");
   if(data_path != "" && StringCompare(data_path, TerminalInfoString(TERMINAL_DATA_PATH), false) != 0)
      return; // a command for another terminal of this user (they share the common folder)
   FileDelete(path, FILE_COMMON);
   string id = Field(keys, values, "id");
   if(id == "")
     {
      PrintFormat("MT5ConsoleController: %s has no id; ignored", path);
      return;
     }
   string action = Field(keys, values, "action");
   if(action == "run")
      Run(id, keys, values);
   else
      if(action == "stop")
         Stop(id, keys, values);
      else
         Answer(id, "error", "unknown action '" + action + "' (expected run or stop)", 0);
  }

//+------------------------------------------------------------------+
bool ReadFields(const string path, string &keys[], string &values[])
  {
   ResetLastError();
   int handle = FileOpen(path, FILE_READ | FILE_TXT | FILE_ANSI | FILE_COMMON | FILE_SHARE_READ, '\t', CP_UTF8);
   if(handle == INVALID_HANDLE)
      return(false);
   ArrayResize(keys, 0);
   ArrayResize(values, 0);
   while(!FileIsEnding(handle))
     {
      string line = FileReadString(handle);
      StringTrimRight(line);
      int equals = StringFind(line, "=");
      if(equals <= 0)
         continue;
      int count = ArraySize(keys);
      ArrayResize(keys, count + 1);
      ArrayResize(values, count + 1);
      keys[count] = StringSubstr(line, 0, equals);
      values[count] = StringSubstr(line, equals + 1);
     }
   FileClose(handle);
   return(true);
  }

//+------------------------------------------------------------------+
string Field(string &keys[], string &values[], const string key)
  {
   for(int i = 0; i < ArraySize(keys); i++)
      if(keys[i] == key)
         return(values[i]);
   return("");
  }

//+------------------------------------------------------------------+
//| CHART_EXPERT_NAME is the program's name; accept a folder prefix  |
//+------------------------------------------------------------------+
bool IsEa(const string running, const string ea)
  {
   if(running == "" || ea == "")
      return(false);
   if(StringCompare(running, ea, false) == 0)
      return(true);
   int length = StringLen(running) - StringLen(ea) - 1;
   return(length >= 0 && StringCompare(StringSubstr(running, length), "\\" + ea, false) == 0);
  }

//+------------------------------------------------------------------+
long FindChart(const string ea, const string symbol, const ENUM_TIMEFRAMES period)
  {
   for(long chart = ChartFirst(); chart >= 0; chart = ChartNext(chart))
     {
      if(chart == ChartID())
         continue;
      if(IsEa(ChartGetString(chart, CHART_EXPERT_NAME), ea) && ChartSymbol(chart) == symbol
         && ChartPeriod(chart) == period)
         return(chart);
     }
   return(0);
  }

//+------------------------------------------------------------------+
void Run(const string id, string &keys[], string &values[])
  {
   string ea = Field(keys, values, "ea");
   string symbol = Field(keys, values, "symbol");
   string template_name = Field(keys, values, "template");
   ENUM_TIMEFRAMES period = (ENUM_TIMEFRAMES)StringToInteger(Field(keys, values, "period"));
   if(ea == "" || symbol == "" || template_name == "" || period == PERIOD_CURRENT)
     {
      Answer(id, "error", "the run command lacks ea, symbol, period or template", 0);
      return;
     }
   long running = FindChart(ea, symbol, period);
   if(running != 0)
     {
      Answer(id, "ok", ea + " already runs on " + symbol, running); // a repeated job changes nothing
      return;
     }
   if(!SymbolSelect(symbol, true))
     {
      Answer(id, "error", "the terminal has no symbol " + symbol, 0);
      return;
     }
   ResetLastError();
   long chart = ChartOpen(symbol, period);
   if(chart == 0)
     {
      Answer(id, "error", StringFormat("ChartOpen(%s) failed: error %d", symbol, GetLastError()), 0);
      return;
     }
   ResetLastError();
   if(!ChartApplyTemplate(chart, template_name))
     {
      int error = GetLastError();
      ChartClose(chart);
      Answer(id, "error", StringFormat("ChartApplyTemplate(%s) failed: error %d", template_name, error), 0);
      return;
     }
   ChartRedraw(chart);
   int count = ArraySize(g_pending_ids);
   ArrayResize(g_pending_ids, count + 1);
   ArrayResize(g_pending_charts, count + 1);
   ArrayResize(g_pending_eas, count + 1);
   ArrayResize(g_pending_deadlines, count + 1);
   g_pending_ids[count] = id;
   g_pending_charts[count] = chart;
   g_pending_eas[count] = ea;
   g_pending_deadlines[count] = TimeLocal() + InpStartTimeoutSeconds;
  }

//+------------------------------------------------------------------+
void CheckPending()
  {
   for(int i = ArraySize(g_pending_ids) - 1; i >= 0; i--)
     {
      long chart = g_pending_charts[i];
      string ea = g_pending_eas[i];
      if(IsEa(ChartGetString(chart, CHART_EXPERT_NAME), ea))
        {
         Answer(g_pending_ids[i], "ok", ea + " runs on " + ChartSymbol(chart), chart);
         RemovePending(i);
        }
      else
         if(TimeLocal() >= g_pending_deadlines[i])
           {
            ChartClose(chart);
            Answer(g_pending_ids[i], "error",
                   ea + " did not start within " + IntegerToString(InpStartTimeoutSeconds) +
                   " s; see the Experts journal (is it compiled, do its inputs fit, does OnInit fail?)", 0);
            RemovePending(i);
           }
     }
  }

//+------------------------------------------------------------------+
void RemovePending(const int index)
  {
   int count = ArraySize(g_pending_ids);
   for(int i = index; i < count - 1; i++)
     {
      g_pending_ids[i] = g_pending_ids[i + 1];
      g_pending_charts[i] = g_pending_charts[i + 1];
      g_pending_eas[i] = g_pending_eas[i + 1];
      g_pending_deadlines[i] = g_pending_deadlines[i + 1];
     }
   ArrayResize(g_pending_ids, count - 1);
   ArrayResize(g_pending_charts, count - 1);
   ArrayResize(g_pending_eas, count - 1);
   ArrayResize(g_pending_deadlines, count - 1);
  }

//+------------------------------------------------------------------+
void Stop(const string id, string &keys[], string &values[])
  {
   string ea = Field(keys, values, "ea");
   string symbol = Field(keys, values, "symbol");
   if(ea == "")
     {
      Answer(id, "error", "the stop command lacks ea", 0);
      return;
     }
   int closed = 0;
   long chart = ChartFirst();
   while(chart >= 0)
     {
      long following = ChartNext(chart); // taken before closing: a closed chart has no next
      if(chart != ChartID() && IsEa(ChartGetString(chart, CHART_EXPERT_NAME), ea)
         && (symbol == "" || ChartSymbol(chart) == symbol))
        {
         if(ChartClose(chart))
            closed++;
        }
      chart = following;
     }
   Answer(id, "ok", StringFormat("closed %d chart(s) running %s", closed, ea), 0);
  }

//+------------------------------------------------------------------+
//| Written under a temporary name and moved, so that mt5console     |
//| never reads half an answer                                       |
//+------------------------------------------------------------------+
void Answer(const string id, const string status, string message, const long chart)
  {
   StringReplace(message, "\r", " ");
   StringReplace(message, "\n", " ");
   string partial = CONTROL_FOLDER + id + ".ans.tmp";
   string answer = CONTROL_FOLDER + id + ".ans";
   int handle = FileOpen(partial, FILE_WRITE | FILE_TXT | FILE_ANSI | FILE_COMMON, '\t', CP_UTF8);
   if(handle == INVALID_HANDLE)
     {
      PrintFormat("MT5ConsoleController: cannot write %s (error %d)", partial, GetLastError());
      return;
     }
   FileWriteString(handle, "id=" + id + "\r\n");
   FileWriteString(handle, "status=" + status + "\r\n");
   FileWriteString(handle, "message=" + message + "\r\n");
   FileWriteString(handle, "chart=" + IntegerToString(chart) + "\r\n");
   FileClose(handle);
   if(!FileMove(partial, FILE_COMMON, answer, FILE_COMMON | FILE_REWRITE))
      PrintFormat("MT5ConsoleController: cannot move %s to %s (error %d)", partial, answer, GetLastError());
   PrintFormat("MT5ConsoleController: %s %s: %s", id, status, message);
  }
//+------------------------------------------------------------------+
